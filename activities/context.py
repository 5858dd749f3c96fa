"""What an action function gets: the step's transaction, the company, the triggering event, and helpers."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from activities.errors import ValidationError
from activities.merge import template_roots
from models.events import EntityEvent, EventChain
from models.fields import relations
from models.recordstore import RecordMissing, get_record, record_to_dict
from models.tables import Company, User


@dataclass
class ActionContext:
    session: Session
    company: Company
    event: EntityEvent
    automation_id: int
    owner_id: int
    run_id: str
    step_index: int

    @property
    def idempotency_key(self) -> str:
        """Stable across retries of this step: sent to providers that deduplicate (Message-ID, Idempotency-Key)."""
        return f"{self.run_id}.step-{self.step_index}"

    @property
    def chain(self) -> EventChain:
        """Provenance for events this step causes: one level deeper, this automation appended."""
        prior = self.event.chain.automation_ids if self.event.chain else []
        return EventChain(depth=self.event.chain_depth + 1, automation_ids=[*prior, self.automation_id],
                          run_id=self.run_id)

    def target_id(self, entity: str, target: str | None, record_id: int | None) -> int:
        """The record an update/delete acts on: an explicit id, the trigger record, or a related record."""
        if record_id is not None:
            return record_id
        target = target or default_target(entity, self.event.entity)
        if target == "trigger":
            return self.event.entity_id
        related = self.event.state.get(f"{target}_id")
        if related is None:
            raise ValidationError(f"the triggering {self.event.entity} {self.event.entity_id} has no {target}")
        return int(related)


def default_target(action_entity: str, trigger_entity: str) -> str | None:
    """Same type as the trigger: the trigger record; else the trigger's related record of that type."""
    if action_entity == trigger_entity:
        return "trigger"
    return action_entity if action_entity in relations(trigger_entity) else None


def _present(record: dict[str, Any]) -> dict[str, Any]:
    # Empty values are dropped so that a merge field naming them is reported missing, not rendered "None".
    return {k: v for k, v in record.items() if v is not None}


def merge_context(session: Session, company: Company, event: EntityEvent, owner_id: int,
                  templates: list[str]) -> dict[str, Any]:
    """The names templates may use: the trigger record (as the event saw it), related records (as they
    are now), the automation owner, the triggering user, the company and the event. Only what the
    templates name is loaded."""
    needed = set().union(*(template_roots(t) for t in templates)) if templates else set()
    state = _present(event.state)
    context: dict[str, Any] = {event.entity: state, "record": state, "company": {
        "id": company.id, "name": company.name, "timezone": company.timezone}}
    context["event"] = {"id": event.event_id, "action": event.action, "entity": event.entity,
                        "occurred_at": event.occurred_at.isoformat(), "previous": event.previous or {}}
    for relation, entity in relations(event.entity).items():
        if relation in needed and state.get(f"{relation}_id") is not None:
            with contextlib.suppress(RecordMissing):
                context[relation] = _present(record_to_dict(
                    get_record(session, event.company_id, entity, int(state[f"{relation}_id"]))))
    for name, user_id in (("owner", owner_id), ("user", event.user_id)):
        if name in needed and user_id is not None:
            user = session.get(User, user_id)
            if user is not None and user.company_id == event.company_id:
                context[name] = _present({"id": user.id, "name": user.name, "email": user.email})
    return context
