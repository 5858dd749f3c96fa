"""Test runs ("what would happen"): intake's firing rules, the workflow's conditions and the executor's rendering
applied to a sample event or an existing record, without executing any action or writing anything."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from activities.errors import BusinessError
from activities.runs import prepare_step
from models.api import RunPreview, RunPreviewRequest, StepPreview
from models.definitions import ActionStep, AutomationDefinition, DelayStep
from models.events import EntityEvent
from models.messages import StepInput
from models.recordstore import get_record, record_to_dict
from models.settings import get_settings
from models.tables import Automation, User, utcnow
from starter.automations import PermissionDenied, current_definition, get_automation
from starter.intake import EventRefused, loop_stop_reason, parse_event, run_for_allows
from workflows.conditions import evaluate, explain_failure
from workflows.run import STEP_FAILED_REASON

#: The run id a preview renders under; merge fields never name it, so it only marks what a preview produced.
PREVIEW_RUN_ID = "test-run"


def sample_event(session: Session, actor: User, automation: Automation, request: RunPreviewRequest) -> EntityEvent:
    """The event to test with: the sample completed with defaults, or one built from an existing record."""
    assert actor.id is not None
    if request.event is not None:
        raw: dict[str, Any] = {"event_id": str(uuid.uuid4()), "company_id": actor.company_id,
                               "entity": automation.trigger_entity, "action": automation.trigger_action,
                               "user_id": actor.id, "source": "app", "occurred_at": utcnow().isoformat(),
                               **request.event}
        if raw["action"] == "updated" and "current" in raw and "previous" not in raw:
            raw["previous"] = {}  # a sample that changes nothing in particular
        try:
            event = parse_event(raw)
        except EventRefused as err:  # name the paths as the request has them
            raise EventRefused([{"path": "event" if e["path"] == "(root)" else f"event.{e['path']}",
                                 "message": e["message"]} for e in err.errors]) from None
    else:
        assert request.record_id is not None
        record = record_to_dict(get_record(session, actor.company_id, automation.trigger_entity, request.record_id))
        action = automation.trigger_action
        event = EntityEvent.model_validate({
            "event_id": str(uuid.uuid4()), "company_id": actor.company_id, "entity": automation.trigger_entity,
            "action": action, "entity_id": request.record_id,
            "user_id": request.user_id if request.user_id is not None else actor.id,
            "source": "app", "occurred_at": utcnow(),
            "current": None if action == "deleted" else record,
            "previous": record if action == "deleted" else (request.previous or {}) if action == "updated" else None,
        })
    if event.company_id != actor.company_id:
        raise PermissionDenied(f"event.company_id {event.company_id} is not your company ({actor.company_id})")
    return event


def _not_fired(automation: Automation, definition: AutomationDefinition, event: EntityEvent) -> str | None:
    """Why intake would start no run of this automation for the event (None: it would)."""
    trigger = definition.trigger
    if (event.entity, event.action) != (trigger.entity, trigger.action):
        return f"the automation triggers on {trigger.entity} {trigger.action}, the event is {event.entity} " \
               f"{event.action}"
    if event.source == "import":
        return "events from data imports never trigger automations"
    if not automation.active:
        return "the automation is inactive"
    if not run_for_allows(definition.run_for, event.user_id):
        return f"the automation runs only for changes by users {definition.run_for}; this one is by " \
               f"{event.user_id if event.user_id is not None else 'no user'}"
    return None


def preview_run(session: Session, actor: User, automation_id: int, request: RunPreviewRequest) -> RunPreview:
    """What a run of the automation's current version would do for the event, step by step."""
    automation = get_automation(session, actor.company_id, automation_id)
    assert automation.id is not None
    definition = current_definition(session, automation)
    event = sample_event(session, actor, automation, request)
    result = RunPreview(automation_id=automation.id, automation_version=automation.version, event=event,
                        fires=False, status="not_fired")
    result.reason = _not_fired(automation, definition, event)
    if result.reason is not None:
        return result
    result.fires = True
    stop = loop_stop_reason(automation.id, event, get_settings().max_chain_depth)
    if stop is not None:
        result.status, result.reason = "stopped", stop
        return result
    previous = event.previous if event.action == "updated" else None
    result.conditions = evaluate(definition.conditions, event.state, previous)
    if not result.conditions["held"]:
        result.status, result.reason = "skipped", explain_failure(result.conditions)
        return result
    result.steps = [_preview_step(session, automation, event, index, step)
                    for index, step in enumerate(definition.steps)]
    failed = any(s.status == "would_fail" for s in result.steps)
    result.status = "failed" if failed else "succeeded"
    result.reason = STEP_FAILED_REASON if failed else None
    return result


def _preview_step(session: Session, automation: Automation, event: EntityEvent, index: int,
                  step: ActionStep | DelayStep) -> StepPreview:
    if isinstance(step, DelayStep):
        return StepPreview(index=index, kind="delay", status="would_wait", delay=step.delay.duration)
    if step.when is not None:
        verdict = evaluate(step.when, event.state, event.previous if event.action == "updated" else None,
                           path=f"steps[{index}].when")
        if not verdict["held"]:
            return StepPreview(index=index, kind="action", action=step.action, status="skipped", conditions=verdict)
    rendered: dict[str, Any] = {}
    step_input = StepInput(run_id=PREVIEW_RUN_ID, step_index=index, action=step.action, params=step.params,
                           automation_id=automation.id or 0, owner_id=automation.owner_id, event=event)
    try:
        prepare_step(session, step_input, rendered)
    except BusinessError as err:
        return StepPreview(index=index, kind="action", action=step.action, status="would_fail",
                           params=rendered or step.params, error_type=err.type, error_message=str(err))
    return StepPreview(index=index, kind="action", action=step.action, status="would_run", params=rendered)
