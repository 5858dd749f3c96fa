"""Run history queries (S4.9): runs by company, automation, record and status; retention purge."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from models.tables import AutomationRun, EventOutbox, ReceivedEvent, StepResult, utcnow


class RunNotFound(LookupError):
    pass


def list_runs(session: Session, *, company_id: int | None = None, automation_id: int | None = None,
              entity: str | None = None, record_id: int | None = None, status: str | None = None,
              event_id: str | None = None, since: datetime | None = None, until: datetime | None = None,
              limit: int = 50, offset: int = 0) -> list[AutomationRun]:
    """Runs newest first; `since`/`until` bound their start time (since inclusive, until exclusive)."""
    query = select(AutomationRun)
    if company_id is not None:
        query = query.where(AutomationRun.company_id == company_id)
    if automation_id is not None:
        query = query.where(AutomationRun.automation_id == automation_id)
    if entity is not None:
        query = query.where(AutomationRun.entity == entity)
    if record_id is not None:
        query = query.where(AutomationRun.entity_id == record_id)
    if status is not None:
        query = query.where(AutomationRun.status == status)
    if event_id is not None:
        query = query.where(AutomationRun.event_id == event_id)
    if since is not None:
        query = query.where(col(AutomationRun.started_at) >= since)
    if until is not None:
        query = query.where(col(AutomationRun.started_at) < until)
    query = query.order_by(col(AutomationRun.started_at).desc(), col(AutomationRun.id))
    return list(session.exec(query.offset(offset).limit(limit)).all())


def find_run(session: Session, run_id: str, company_id: int | None = None) -> AutomationRun:
    """A run by its id or by a prefix of it matching exactly one run (of `company_id` when given)."""
    run = session.get(AutomationRun, run_id)
    if run is not None and company_id in (None, run.company_id):
        return run
    query = select(AutomationRun).where(col(AutomationRun.id).startswith(run_id, autoescape=True))
    if company_id is not None:
        query = query.where(AutomationRun.company_id == company_id)
    matches = session.exec(query.limit(2)).all()
    if len(matches) != 1:
        raise RunNotFound(f"no run {run_id!r}" if not matches else f"{run_id!r} matches several runs")
    return matches[0]


def run_steps(session: Session, run_id: str) -> list[StepResult]:
    return list(session.exec(select(StepResult).where(StepResult.run_id == run_id)
                             .order_by(col(StepResult.step_index))).all())


def purge(session: Session, retention_days: int) -> int:
    """Delete finished runs (and their steps), received-event records and published outbox events older than the
    retention period."""
    cutoff = utcnow() - timedelta(days=retention_days)
    # Their steps go with them: the step table's foreign key cascades on delete.
    result = session.execute(delete(AutomationRun).where(col(AutomationRun.started_at) < cutoff,
                                                         col(AutomationRun.finished_at).is_not(None)))
    session.execute(delete(ReceivedEvent).where(col(ReceivedEvent.received_at) < cutoff))
    session.execute(delete(EventOutbox).where(col(EventOutbox.published_at) < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
