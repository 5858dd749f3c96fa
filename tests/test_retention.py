"""Run-history retention on the real Temporal dev server: the Schedule is created once and brought up to date at
every start, and what it starts purges finished runs older than the retention period (and nothing else)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleIntervalSpec

from models.db import session_scope
from models.settings import get_settings
from models.tables import AutomationRun, EventOutbox, StepResult, utcnow
from starter.schedules import PURGE_EVERY, RETENTION_SCHEDULE_ID, ensure_retention_schedule
from tests.helpers import event, running_worker, wait_for

pytestmark = pytest.mark.integration


def add_run(company_id: int, age: timedelta, *, finished: bool = True) -> str:
    run_id = f"automation-1-event-{uuid.uuid4()}"
    started = utcnow() - age
    with session_scope() as s:
        s.add(AutomationRun(id=run_id, company_id=company_id, automation_id=1, automation_version=1,
                            automation_name="Old", event_id=run_id[-36:], entity="deal", entity_id=1,
                            trigger_action="updated", status="succeeded" if finished else "waiting",
                            started_at=started, updated_at=started, finished_at=started if finished else None))
        s.flush()
        s.add(StepResult(run_id=run_id, step_index=0, kind="action", action="activity.create", status="succeeded"))
    return run_id


def add_outbox_event(company_id: int, published_days_ago: int | None) -> str:
    payload = event(company_id, current={"title": "x"})  # fires nothing: the company has no automations
    published = utcnow() - timedelta(days=published_days_ago) if published_days_ago is not None else None
    with session_scope() as s:
        s.add(EventOutbox(event_id=payload["event_id"], company_id=company_id, payload=payload,
                          published_at=published, created_at=published or utcnow()))
    return str(payload["event_id"])


def outbox_has(event_id: str) -> bool:
    with session_scope() as s:
        return s.exec(select(EventOutbox).where(EventOutbox.event_id == event_id)).first() is not None


def exists(run_id: str) -> bool:
    with session_scope() as s:
        return s.get(AutomationRun, run_id) is not None


async def test_the_retention_schedule_purges_old_runs(dev_env: Any, company_factory: Any) -> None:
    client: Client = dev_env.client
    c = company_factory()
    old, recent = add_run(c.id, timedelta(days=20)), add_run(c.id, timedelta(days=2))
    still_waiting = add_run(c.id, timedelta(days=30), finished=False)  # a run in a long delay is kept
    published_long_ago, unpublished = add_outbox_event(c.id, 20), add_outbox_event(c.id, None)
    settings = get_settings()
    retention = settings.run_retention_days
    async with running_worker(client):  # the schedule starts its workflow on this worker's task queue
        try:
            await ensure_retention_schedule(client)
            settings.run_retention_days = 10
            handle = await ensure_retention_schedule(client)  # again: updated in place, not duplicated
            description = await handle.describe()
            action = description.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.workflow == "PurgeRunHistory" and action.task_queue == settings.task_queue
            assert await client.data_converter.decode(action.args) == [10]  # type: ignore[arg-type]
            assert description.schedule.spec.intervals == [ScheduleIntervalSpec(every=PURGE_EVERY)]

            await handle.trigger()
            await wait_for(lambda: not exists(old), timeout=30)
            assert exists(recent) and exists(still_waiting)
            with session_scope() as s:  # the purged run's steps went with it
                assert s.exec(select(StepResult).where(StepResult.run_id == old)).first() is None
                assert s.exec(select(StepResult).where(StepResult.run_id == recent)).first() is not None
            assert not outbox_has(published_long_ago) and outbox_has(unpublished)
        finally:
            settings.run_retention_days = retention
            await client.get_schedule_handle(RETENTION_SCHEDULE_ID).delete()
