"""Event intake (S2): `emit(event)` validates an entity event, matches it to automations and starts one run
workflow per firing. Durable and idempotent: the matched set is stored with the event id, and each run's
workflow id is derived from automation + event, so Temporal itself refuses a second start."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.registry import REGISTRY, discover
from models.db import session_scope
from models.definitions import ActionStep, AutomationDefinition, pydantic_errors
from models.events import EntityEvent
from models.messages import RunInput
from models.settings import get_settings
from models.tables import Automation, AutomationVersion, ReceivedEvent
from workflows.run import (
    AUTOMATION_ID,
    COMPANY_ID,
    ENTITY,
    RECORD_ID,
    RUN_STATUS,
    TRIGGER_ACTION,
    AutomationRunWorkflow,
)


class EventRefused(ValueError):
    """A malformed event: nothing was started for it."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("event refused: " + "; ".join(f"{e['path']}: {e['message']}" for e in errors))


@dataclass(frozen=True)
class Firing:
    automation_id: int
    workflow_id: str
    #: False when this firing's run had already been started (a redelivered event).
    started: bool
    stop_reason: str | None = None


def external_steps(definition: AutomationDefinition) -> dict[int, str]:
    """Which steps run as regular activities on their family's task queue (decided once per run)."""
    base = get_settings().task_queue
    queues = {}
    for index, step in enumerate(definition.steps):
        if isinstance(step, ActionStep) and step.action in REGISTRY:
            queue = REGISTRY[step.action].task_queue(base)
            if queue:
                queues[index] = queue
    return queues


def parse_event(raw: Any) -> EntityEvent:
    if isinstance(raw, EntityEvent):
        return raw
    if not isinstance(raw, dict):
        raise EventRefused([{"path": "(root)", "message": "an event is a JSON object"}])
    try:
        return EntityEvent.model_validate(raw)
    except ValidationError as err:
        raise EventRefused(pydantic_errors(err.errors())) from None


def workflow_id_for(automation_id: int, event_id: str) -> str:
    return f"automation-{automation_id}-event-{event_id}"


def loop_stop_reason(automation_id: int, event: EntityEvent, max_depth: int) -> str | None:
    """S4.7: an automation never fires on an event its own chain caused; chains are cut at `max_depth`."""
    if event.chain is None:
        return None
    if automation_id in event.chain.automation_ids:
        return (f"loop protection: this event was caused by a chain that already ran automation {automation_id} "
                f"(run {event.chain.run_id})")
    if event.chain.depth > max_depth:
        return f"loop protection: chain of automation-caused events is {event.chain.depth} deep (limit {max_depth})"
    return None


def run_for_allows(run_for: str | list[int], user_id: int | None) -> bool:
    """S3 `run_for`: `anyone`, or only changes made by the listed users."""
    return run_for == "anyone" or user_id in run_for


def match(session: Session, event: EntityEvent) -> list[dict[str, Any]]:
    """The firings of `event`: active automations of its company on its trigger, for its user."""
    if event.source == "import":
        return []  # seed: data imports never trigger automations
    rows = session.exec(
        select(Automation, AutomationVersion)
        .join(AutomationVersion, (col(AutomationVersion.automation_id) == Automation.id)
              & (col(AutomationVersion.version) == Automation.version))
        .where(Automation.company_id == event.company_id, Automation.trigger_entity == event.entity,
               Automation.trigger_action == event.action, col(Automation.active).is_(True))
        .order_by(col(Automation.id))
    ).all()
    max_depth = get_settings().max_chain_depth
    matched = []
    for automation, version in rows:
        if not run_for_allows(version.definition.get("run_for", "anyone"), event.user_id):
            continue
        assert automation.id is not None
        matched.append({"automation_id": automation.id, "version": version.version,
                        "owner_id": automation.owner_id,
                        "stop_reason": loop_stop_reason(automation.id, event, max_depth)})
    return matched


def _receive(event: EntityEvent) -> list[tuple[dict[str, Any], AutomationDefinition]]:
    """Store the event's firings once (first delivery wins); return them with their definitions."""
    digest = event.payload_hash()
    with session_scope() as session:
        existing = session.get(ReceivedEvent, event.event_id)
        if existing is None:
            matched = match(session, event)
            session.execute(insert(ReceivedEvent).values(
                event_id=event.event_id, company_id=event.company_id, payload_hash=digest,
                matched=matched).on_conflict_do_nothing())
            existing = session.get(ReceivedEvent, event.event_id)
            assert existing is not None
        if existing.payload_hash != digest:
            raise EventRefused([{"path": "event_id", "message": f"event {event.event_id} was already received "
                                                                "with a different payload"}])
        firings = []
        for m in existing.matched:
            version = session.get(AutomationVersion, (m["automation_id"], m["version"]))
            if version is not None:
                firings.append((m, AutomationDefinition.model_validate(version.definition)))
        return firings


async def emit(client: Client, raw: Any) -> list[Firing]:
    """Take one entity event; returns one Firing per automation it fires."""
    event = parse_event(raw)
    discover()
    firings = await asyncio.to_thread(_receive, event)
    return list(await asyncio.gather(*(_start(client, event, m, d) for m, d in firings)))


async def _start(client: Client, event: EntityEvent, m: dict[str, Any], definition: AutomationDefinition) -> Firing:
    workflow_id = workflow_id_for(m["automation_id"], event.event_id)
    attributes = TypedSearchAttributes([
        SearchAttributePair(COMPANY_ID, event.company_id), SearchAttributePair(AUTOMATION_ID, m["automation_id"]),
        SearchAttributePair(ENTITY, event.entity), SearchAttributePair(RECORD_ID, event.entity_id),
        SearchAttributePair(TRIGGER_ACTION, event.action), SearchAttributePair(RUN_STATUS, "running"),
    ])
    run = RunInput(automation_id=m["automation_id"], automation_version=m["version"], owner_id=m["owner_id"],
                   definition=definition, event=event, stop_reason=m["stop_reason"],
                   external_steps=external_steps(definition))
    try:
        await client.start_workflow(
            AutomationRunWorkflow.run, run, id=workflow_id, task_queue=get_settings().task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attributes if get_settings().search_attributes else None,
            static_summary=f"{definition.name} · {event.entity} {event.entity_id} {event.action}",
            static_details=f"Automation {m['automation_id']} v{m['version']}, event {event.event_id} "
                           f"(source {event.source}), company {event.company_id}",
        )
    except WorkflowAlreadyStartedError:
        return Firing(m["automation_id"], workflow_id, started=False, stop_reason=m["stop_reason"])
    return Firing(m["automation_id"], workflow_id, started=True, stop_reason=m["stop_reason"])
