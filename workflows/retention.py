"""Run-history retention: a Temporal Schedule (starter/schedules.py) starts this workflow every hour to purge
finished runs older than the retention period. The purge itself is an activity (activities/retention.py)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn(name="PurgeRunHistory")
class PurgeRunHistoryWorkflow:
    @workflow.run
    async def run(self, retention_days: int) -> int:
        """Returns how many runs were purged."""
        purged: int = await workflow.execute_activity(
            "purge_run_history", retention_days, result_type=int, start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=5),
            summary=f"Purge finished runs older than {retention_days} days")
        return purged
