"""Run history queries (S4.9): runs by company, automation, record and status; retention purge."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from models.tables import AutomationRun, ReceivedEvent, StepResult, utcnow


def list_runs(session: Session, *, company_id: int | None = None, automation_id: int | None = None,
              entity: str | None = None, record_id: int | None = None, status: str | None = None,
              limit: int = 50) -> list[AutomationRun]:
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
    return list(session.exec(query.order_by(col(AutomationRun.started_at).desc()).limit(limit)).all())


def find_run(session: Session, run_id: str) -> AutomationRun:
    """A run by its id or by a prefix of it matching exactly one run."""
    run = session.get(AutomationRun, run_id)
    if run is not None:
        return run
    matches = session.exec(select(AutomationRun).where(col(AutomationRun.id).startswith(run_id)).limit(2)).all()
    if len(matches) != 1:
        raise LookupError(f"no run {run_id!r}" if not matches else f"{run_id!r} matches several runs")
    return matches[0]


def run_steps(session: Session, run_id: str) -> list[StepResult]:
    return list(session.exec(select(StepResult).where(StepResult.run_id == run_id)
                             .order_by(col(StepResult.step_index))).all())


def purge(session: Session, retention_days: int) -> int:
    """Delete finished runs (and their steps) and received-event records older than the retention period."""
    cutoff = utcnow() - timedelta(days=retention_days)
    old = select(AutomationRun.id).where(col(AutomationRun.started_at) < cutoff,
                                         col(AutomationRun.finished_at).is_not(None))
    session.execute(delete(StepResult).where(col(StepResult.run_id).in_(old)))
    result = session.execute(delete(AutomationRun).where(col(AutomationRun.started_at) < cutoff,
                                                         col(AutomationRun.finished_at).is_not(None)))
    session.execute(delete(ReceivedEvent).where(col(ReceivedEvent.received_at) < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
