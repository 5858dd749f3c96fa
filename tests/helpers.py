"""Test helpers: automations, events and runs in a few lines."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import select
from temporalio.client import Client
from temporalio.worker import Worker

from models.db import session_scope
from models.events import EntityEvent
from models.messages import RunOutcome
from models.settings import get_settings
from models.tables import AutomationRun, StepResult, User
from starter.automations import save_automation
from worker import build_workers

ROOT = Path(__file__).resolve().parent.parent


def create_automation(user_id: int, definition: dict[str, Any]) -> int:
    with session_scope() as s:
        actor = s.get(User, user_id)
        assert actor is not None
        automation = save_automation(s, actor, definition)
        assert automation.id is not None
        return automation.id


def event(company_id: int, entity: str = "deal", action: str = "updated", entity_id: int = 1,
          current: dict[str, Any] | None = None, previous: dict[str, Any] | None = None,
          **extra: Any) -> dict[str, Any]:
    if action == "deleted":
        current, previous = None, previous or {"title": "gone"}
    elif action == "updated" and previous is None:
        previous = {}
    elif action == "created":
        previous = None
    return {"event_id": str(uuid.uuid4()), "company_id": company_id, "entity": entity, "action": action,
            "entity_id": entity_id, "user_id": extra.pop("user_id", None), "source": extra.pop("source", "app"),
            "occurred_at": extra.pop("occurred_at", datetime.now(UTC).isoformat()),
            "current": current if action != "deleted" else None, "previous": previous, **extra}


@asynccontextmanager
async def running_worker(client: Client) -> AsyncIterator[Worker]:
    """A worker on a task queue of its own; intake is pointed at that queue for the duration, and indexes
    runs by search attributes unless the server is the time-skipping one (it has no custom attributes)."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings = get_settings()
    previous = settings.task_queue, settings.search_attributes
    settings.task_queue, settings.search_attributes = queue, id(client) not in TIME_SKIPPING
    try:
        async with AsyncExitStack() as stack:
            workers = [await stack.enter_async_context(w) for w in build_workers(client, queue)]
            yield workers[0]
    finally:
        settings.task_queue, settings.search_attributes = previous


async def emit_and_wait(client: Client, raw: dict[str, Any] | EntityEvent) -> list[Any]:
    """Emit an event and wait for every run it started; returns their outcomes."""
    from starter.intake import emit

    firings = await emit(client, raw)
    return [await outcome(client, f.workflow_id) for f in firings]


#: Time-skipping environments by client: their time only skips while a test waits for a result.
TIME_SKIPPING: dict[int, Any] = {}


async def outcome(client: Client, workflow_id: str) -> RunOutcome:
    """Wait for a run's result. On the time-skipping server, time skips (delays pass) only meanwhile:
    the handle intake's start gave is not the test client's, so the unlock is explicit."""
    handle = client.get_workflow_handle(workflow_id, result_type=RunOutcome)
    env = TIME_SKIPPING.get(id(client))
    if env is None:
        return await handle.result()
    async with env.time_skipping_unlocked():
        return await handle.result()


def run_row(run_id: str) -> AutomationRun:
    with session_scope() as s:
        row = s.get(AutomationRun, run_id)
        assert row is not None, f"no run {run_id}"
        return row


def run_status(run_id: str) -> str | None:
    with session_scope() as s:
        row = s.get(AutomationRun, run_id)
        return row.status if row else None


def steps_of(run_id: str) -> list[StepResult]:
    with session_scope() as s:
        return list(s.exec(select(StepResult).where(StepResult.run_id == run_id)
                           .order_by(StepResult.step_index)).all())  # type: ignore[arg-type]


async def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def worker_process(queue: str, address: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`automations worker` in a process of its own on `queue`, with the test action types; JSON logs to `log`."""
    env = {**os.environ, "DATABASE_URL": get_settings().database_url, "TEMPORAL_ADDRESS": address,
           "TASK_QUEUE": queue, "ACTION_MODULES": json.dumps(["tests.support_actions"]),
           "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json"}
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115  (the child holds it)
    return subprocess.Popen([sys.executable, "-m", "starter.cli", "worker"], cwd=ROOT, env=env,
                            stdout=output, stderr=output)


def log_records(log: Path) -> list[dict[str, Any]]:
    """The JSON records of a worker's log (the SDK core's own lines are plain text: skipped)."""
    records = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records
