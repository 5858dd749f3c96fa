"""Many workers on one task queue, on the real dev server: one killed under load loses nothing and repeats
nothing; one stopped with SIGTERM drains (finishes its steps in flight) before it exits."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from models.db import session_scope
from models.settings import get_settings
from models.tables import Activity
from starter.intake import Firing, emit
from tests.helpers import create_automation, event, log_records, outcome, steps_of, wait_for, worker_process

pytestmark = pytest.mark.integration

STEPS: list[dict[str, Any]] = [
    {"action": "activity.create", "params": {"subject": "first {{deal.title}}"}},
    {"action": "test.slow_activity", "params": {"subject": "slow {{deal.title}}", "seconds": 2}},
    {"action": "activity.create", "params": {"subject": "last {{deal.title}}"}}]


async def pollers(client: Client, queue: str) -> set[str]:
    described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    return {p.identity for p in described.pollers}


async def wait_for_pollers(client: Client, queue: str, count: int) -> None:
    for _ in range(300):
        if len(await pollers(client, queue)) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} workers did not start polling {queue}")


def subjects(company_id: int) -> list[str]:
    with session_scope() as s:
        return sorted(s.exec(select(Activity.subject).where(Activity.company_id == company_id)).all())


def steps_done(log: Path) -> list[tuple[str, int]]:
    """(run, step index) of every step the worker logged as succeeded."""
    return [(r["run_id"], r["step_index"]) for r in log_records(log) if r["message"].endswith(" succeeded")
            and r.get("step_index") is not None]


@contextmanager
def workers(queue: str, address: str, logs: list[Path]) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes = [worker_process(queue, address, log) for log in logs]
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=40)


async def fire(client: Client, queue: str, company_id: int, titles: list[str]) -> list[Firing]:
    settings = get_settings()
    previous, settings.task_queue = settings.task_queue, queue
    try:
        return [f for title in titles for f in await emit(client, event(company_id, current={"title": title}))]
    finally:
        settings.task_queue = previous


async def test_two_workers_one_killed_under_load_every_run_completes_each_effect_once(
        dev_env: Any, company_factory: Any, tmp_path: Path) -> None:
    client: Client = dev_env.client
    c = company_factory()
    create_automation(c.admin_id, {"name": "Under load", "trigger": {"entity": "deal", "action": "updated"},
                                   "steps": STEPS})
    queue, address = f"two-workers-{c.id}", client.service_client.config.target_host
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    titles = [f"d{i:02}" for i in range(16)]
    with workers(queue, address, logs) as (a, b):
        await wait_for_pollers(client, queue, 2)
        firings = await fire(client, queue, c.id, titles)
        # Both workers are busy (each has finished steps), and many runs are still in flight.
        await wait_for(lambda: all(steps_done(log) for log in logs), timeout=30)
        a.send_signal(signal.SIGKILL)
        a.wait()
        results = await asyncio.wait_for(asyncio.gather(*(outcome(client, f.workflow_id) for f in firings)),
                                         timeout=60)
        assert b.poll() is None
    assert [r.status for r in results] == ["succeeded"] * len(titles)
    for f in firings:
        assert [s.status for s in steps_of(f.workflow_id)] == ["succeeded"] * 3
    # Each effect exactly once, though A died with steps in flight and B redid its workflow tasks.
    assert subjects(c.id) == sorted(f"{step} {t}" for t in titles for step in ("first", "slow", "last"))
    # B finished runs that A had started: the runs A held when it died were taken over, not lost.
    started_by_a = {run for run, index in steps_done(logs[0]) if index == 0}
    finished_by_b = {run for run, index in steps_done(logs[1]) if index == 2}
    assert started_by_a & finished_by_b
    # The JSON logs carry the ids an operator searches by.
    step_logs = [r for r in log_records(logs[1]) if r.get("step_index") is not None]
    assert step_logs and all(r["company_id"] == c.id and r["run_id"].startswith("automation-")
                             and r["temporal_activity"]["workflow_id"] == r["run_id"] for r in step_logs)


async def test_a_worker_stopped_with_sigterm_finishes_its_step_in_flight_first(
        dev_env: Any, company_factory: Any, tmp_path: Path) -> None:
    client: Client = dev_env.client
    c = company_factory()
    slow = [STEPS[0], {**STEPS[1], "params": {**STEPS[1]["params"], "seconds": 4}}, STEPS[2]]
    create_automation(c.admin_id, {"name": "Drained", "trigger": {"entity": "deal", "action": "updated"},
                                   "steps": slow})
    queue, address = f"drain-{c.id}", client.service_client.config.target_host
    logs = [tmp_path / "stopping.log", tmp_path / "replacement.log"]
    with workers(queue, address, logs[:1]) as (stopping,):
        await wait_for_pollers(client, queue, 1)
        [firing] = await fire(client, queue, c.id, ["x"])
        await wait_for(lambda: [s.status for s in steps_of(firing.workflow_id)][:1] == ["succeeded"], timeout=30)
        await asyncio.sleep(1)  # the 4-second step is in flight
        stopping.send_signal(signal.SIGTERM)
        with workers(queue, address, logs[1:]):
            assert await asyncio.to_thread(stopping.wait, 40) == 0
            result = await asyncio.wait_for(outcome(client, firing.workflow_id), timeout=60)
    assert result.status == "succeeded"
    assert (firing.workflow_id, 1) in steps_done(logs[0])  # the stopping worker finished the slow step itself
    assert steps_of(firing.workflow_id)[1].attempts == 1   # ... in its first attempt: nothing was redone
    assert subjects(c.id) == ["first x", "last x", "slow x"]
