"""The retention purge: deletes finished runs (with their steps) and intake records older than the period."""

from __future__ import annotations

from temporalio import activity

from models.db import session_scope
from models.history import purge


@activity.defn(name="purge_run_history")
def purge_run_history(retention_days: int) -> int:
    with session_scope() as session:
        return purge(session, retention_days)
