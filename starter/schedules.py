"""The Temporal Schedules the engine keeps, created or brought up to date at every worker start (idempotent):
the run-history retention purge, hourly, with the configured retention period."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)

from models.settings import get_settings
from workflows.retention import PurgeRunHistoryWorkflow

RETENTION_SCHEDULE_ID = "crm-run-history-retention"
PURGE_EVERY = timedelta(hours=1)


def retention_schedule(task_queue: str, retention_days: int) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PurgeRunHistoryWorkflow.run, retention_days, id="crm-run-history-purge", task_queue=task_queue,
            static_summary=f"Purge finished runs older than {retention_days} days"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=PURGE_EVERY)]),
        # A purge still running when the next is due makes the next one pointless.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=PURGE_EVERY),
    )


async def ensure_retention_schedule(client: Client) -> ScheduleHandle:
    """Create the schedule, or update it to the current settings (task queue, retention period)."""
    settings = get_settings()
    schedule = retention_schedule(settings.task_queue, settings.run_retention_days)
    try:
        return await client.create_schedule(RETENTION_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(RETENTION_SCHEDULE_ID)
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))
        return handle
