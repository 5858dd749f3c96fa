"""Run history and the step executors: the activities the run workflow calls.

`execute_step` (record actions, a local activity) applies an action and records its step result in one
transaction keyed by (run, step): a retried or replayed attempt finds the step already succeeded and
returns the stored output instead of applying the effect again (S4.5).

`execute_external_step` (actions calling an outside service, a regular activity on the family's task
queue) cannot share a transaction with the provider: it records the provider's answer (message id) right
after the call, so only a crash between the provider accepting and that commit can repeat the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select
from temporalio import activity

from activities.context import ActionContext, merge_context
from activities.errors import (
    BusinessError,
    OpenDealLimitReached,
    RecordNotFound,
    TransientError,
    ValidationError,
)
from activities.merge import render
from activities.registry import ActionType, get_action
from models.db import session_scope
from models.definitions import pydantic_errors
from models.messages import DelayEnded, RunRecord, StepInput, StepOutcome, StepRecord
from models.recordstore import LimitReached, RecordInvalid, RecordMissing
from models.tables import Automation, AutomationRun, Company, StepResult, utcnow

FINAL_STATUSES = {"succeeded", "failed", "skipped", "stopped"}


def _log(level: int, message: str, *args: Any, ids: dict[str, Any]) -> None:
    """A log line with the ids operators search by (JSON logs carry them as fields, with Temporal's own)."""
    activity.logger.log(level, message, *args, extra=ids)


@activity.defn(name="record_run")
def record_run(run: RunRecord) -> None:
    """Insert or update the run's row; the first call also writes one pending row per step."""
    now = utcnow()
    event = run.event
    values = {
        "id": run.run_id, "company_id": event.company_id, "automation_id": run.automation_id,
        "automation_version": run.automation_version, "automation_name": run.automation_name,
        "event_id": event.event_id, "entity": event.entity, "entity_id": event.entity_id,
        "trigger_action": event.action, "status": run.status, "reason": run.reason,
        "conditions": run.conditions, "event": event.model_dump(mode="json"),
        "chain_depth": event.chain_depth, "started_at": now, "updated_at": now,
        "finished_at": now if run.finished else None,
    }
    with session_scope() as session:
        session.execute(insert(AutomationRun).values(**values).on_conflict_do_update(
            index_elements=["id"],
            set_={k: values[k] for k in ("status", "reason", "conditions", "updated_at", "finished_at")}))
        if run.steps:
            session.execute(insert(StepResult).values([
                {"run_id": run.run_id, "step_index": i, "kind": s.kind, "action": s.action, "status": "pending"}
                for i, s in enumerate(run.steps)]).on_conflict_do_nothing())
        _log(logging.INFO, "run %s %s%s", run.run_id, run.status, f": {run.reason}" if run.reason else "",
             ids={"run_id": run.run_id, "company_id": event.company_id, "automation_id": run.automation_id})
        if run.finished:
            # Steps a finished run never reached (it stopped after a delay) will not run: say so.
            session.execute(update(StepResult).where(col(StepResult.run_id) == run.run_id,
                                                     col(StepResult.status) == "pending")
                            .values(status="skipped", finished_at=now))


@activity.defn(name="record_step")
def record_step(step: StepRecord) -> None:
    """Record an outcome decided by the workflow (skipped, failed after retries, delay done).

    A step that already succeeded keeps its result: a late failure report never overwrites it.
    """
    now = utcnow()
    with session_scope() as session:
        row = _lock_step(session, step.run_id, step.step_index)
        if row.status != "succeeded":
            row.status = step.status
            row.error_type = step.error_type or row.error_type
            row.error_message = step.error_message or row.error_message
            row.conditions = step.conditions if step.conditions is not None else row.conditions
            row.started_at = row.started_at or now
            row.finished_at = now
            session.add(row)
        if step.run_status:
            run = session.get(AutomationRun, step.run_id)
            if run is not None:
                run.status, run.updated_at = step.run_status, now
                session.add(run)


@activity.defn(name="automation_is_active")
def automation_is_active(automation_id: int) -> bool:
    """v0.1's check after a delay (runs whose delay started before v0.2 still call it)."""
    with session_scope() as session:
        automation = session.get(Automation, automation_id)
        return automation is not None and automation.active


@activity.defn(name="resume_after_delay")
def resume_after_delay(ended: DelayEnded) -> str | None:
    """After a delay: the reason to stop if the automation was deactivated or deleted meanwhile, else None; the
    delay step and the run's status are recorded in the same transaction."""
    now = utcnow()
    with session_scope() as session:
        automation = session.get(Automation, ended.automation_id)
        reason = None
        if automation is None or not automation.active:
            reason = (f"automation {'deleted' if automation is None else 'deactivated'} during the delay of "
                      f"step {ended.step_index + 1}")
        row = _lock_step(session, ended.run_id, ended.step_index)
        if row.status != "succeeded":
            row.status, row.finished_at = ("skipped" if reason else "succeeded"), now
            row.started_at = row.started_at or now
            session.add(row)
        run = session.get(AutomationRun, ended.run_id)
        if run is not None and reason is None:
            run.status, run.updated_at = "running", now
            session.add(run)
        return reason


def _lock_step(session: Session, run_id: str, step_index: int) -> StepResult:
    """The step's row, created if missing, locked until the transaction ends (one round trip: the no-op
    update on conflict takes the row lock, like SELECT ... FOR UPDATE)."""
    statement = (insert(StepResult).values(run_id=run_id, step_index=step_index, kind="action", status="pending")
                 .on_conflict_do_update(index_elements=["run_id", "step_index"],
                                        set_={"run_id": insert(StepResult).excluded.run_id})
                 .returning(StepResult))
    return session.execute(select(StepResult).from_statement(statement)).scalar_one()


def _templates(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _templates(v)]
    if isinstance(value, list):
        return [t for v in value for t in _templates(v)]
    return [value] if isinstance(value, str) and "{{" in value else []


def prepare_step(session: Session, step: StepInput, rendered: dict[str, Any]) -> tuple[ActionType, ActionContext, Any]:
    """Render the step's merge fields and validate its params; `rendered` keeps them for the step record.

    Writes nothing: a test run (starter.testrun) calls it too, so its preview renders exactly as a run does."""
    try:
        action_type = get_action(step.action)
    except KeyError as err:
        raise ValidationError(str(err.args[0])) from None
    event = step.event
    company = session.get(Company, event.company_id)
    if company is None:
        raise RecordNotFound(f"company {event.company_id} does not exist")
    context = merge_context(session, company, event, step.owner_id, _templates(step.params))
    rendered.update(render(step.params, context))
    try:
        params = action_type.params_model.model_validate(rendered)
    except PydanticValidationError as err:
        problems = "; ".join(f"{e['path']}: {e['message']}" for e in pydantic_errors(err.errors(), "params"))
        raise ValidationError(f"invalid params after rendering merge fields: {problems}") from None
    ctx = ActionContext(session=session, company=company, event=event, automation_id=step.automation_id,
                        owner_id=step.owner_id, run_id=step.run_id, step_index=step.step_index)
    return action_type, ctx, params


def _execute(action_type: ActionType, ctx: ActionContext, params: Any) -> dict[str, Any]:
    """Run the action, translating the record service's errors into business errors."""
    try:
        return action_type.execute(ctx, params)
    except RecordInvalid as err:
        raise ValidationError(str(err)) from None
    except RecordMissing as err:
        raise RecordNotFound(str(err)) from None
    except LimitReached as err:
        raise OpenDealLimitReached(str(err)) from None


def _succeed(row: StepResult, output: dict[str, Any], attempt: int) -> StepOutcome:
    row.status, row.output, row.attempts, row.finished_at = "succeeded", output, attempt, utcnow()
    row.error_type = row.error_message = None
    return StepOutcome(status="succeeded", output=output)


def _run_step(step: StepInput, body: Callable[[int, dict[str, Any]], StepOutcome]) -> StepOutcome:
    """Shared by both executors: a business error is recorded on the step (with what it tried) and
    raised non-retryable; a transient one is raised retryable (honouring Retry-After)."""
    attempt = activity.info().attempt
    rendered: dict[str, Any] = {}
    ids = {"run_id": step.run_id, "company_id": step.event.company_id, "automation_id": step.automation_id,
           "step_index": step.step_index}
    try:
        outcome = body(attempt, rendered)
    except BusinessError as err:
        # INFO: a failed step is an outcome the run records, not a fault of the engine.
        _log(logging.INFO, "run %s step %d (%s) failed: %s: %s", step.run_id, step.step_index + 1, step.action,
             err.type, err, ids=ids)
        # The effect rolled back with its transaction; keep what the step tried and why it failed.
        with session_scope() as session:
            row = _lock_step(session, step.run_id, step.step_index)
            if row.status != "succeeded":
                row.status, row.attempts, row.finished_at = "failed", attempt, utcnow()
                row.params = rendered or step.params
                row.started_at = row.started_at or row.finished_at
                row.error_type, row.error_message = err.type, str(err)
                session.add(row)
        raise err.to_application_error() from None
    except TransientError as err:
        _log(logging.INFO, "run %s step %d (%s) attempt %d: %s (retried)", step.run_id, step.step_index + 1,
             step.action, attempt, err, ids=ids)
        raise err.to_application_error() from None
    _log(logging.INFO, "run %s step %d (%s) succeeded", step.run_id, step.step_index + 1, step.action, ids=ids)
    return outcome


@activity.defn(name="execute_step")
def execute_step(step: StepInput) -> StepOutcome:
    """A record action: render, validate, apply and record, all in one transaction."""

    def body(attempt: int, rendered: dict[str, Any]) -> StepOutcome:
        with session_scope() as session:
            row = _lock_step(session, step.run_id, step.step_index)
            if row.status == "succeeded":
                return StepOutcome(status="succeeded", output=row.output or {})
            row.started_at = utcnow()
            action_type, ctx, params = prepare_step(session, step, rendered)
            row.params = rendered
            outcome = _succeed(row, _execute(action_type, ctx, params), attempt)
            session.add(row)
            return outcome

    return _run_step(step, body)


@activity.defn(name="execute_external_step")
def execute_external_step(step: StepInput) -> StepOutcome:
    """An action calling an outside service: claim and render, call (no lock held), record the answer."""

    def body(attempt: int, rendered: dict[str, Any]) -> StepOutcome:
        with session_scope() as session:
            row = _lock_step(session, step.run_id, step.step_index)
            if row.status == "succeeded":
                return StepOutcome(status="succeeded", output=row.output or {})
            row.started_at, row.attempts = row.started_at or utcnow(), attempt
            session.add(row)
        with session_scope() as session:  # reads only (records, credentials): no lock held during the call
            action_type, ctx, params = prepare_step(session, step, rendered)
            output = _execute(action_type, ctx, params)
        with session_scope() as session:
            row = _lock_step(session, step.run_id, step.step_index)
            row.params = rendered
            outcome = _succeed(row, output, attempt)
            session.add(row)
            return outcome

    return _run_step(step, body)


ALL_ACTIVITIES: list[Callable[..., Any]] = [record_run, record_step, automation_is_active, resume_after_delay,
                                            execute_step, execute_external_step]
