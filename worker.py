"""Builds the workers: the run workflow with record actions, and one rate-limited worker per family of
external actions (Slack, email, …) on its own task queue. Registries in, nothing else."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.registry import discover, external_families
from activities.retention import purge_run_history
from activities.runs import ALL_ACTIVITIES, execute_external_step
from models.settings import get_settings
from workflows.retention import PurgeRunHistoryWorkflow
from workflows.run import AutomationRunWorkflow

#: On SIGTERM, in-flight activities get this long to finish before they are cancelled (and retried elsewhere).
SHUTDOWN_GRACE = timedelta(seconds=30)


def build_worker(client: Client, task_queue: str | None = None, *, max_concurrent_activities: int = 32) -> Worker:
    """The main worker: run workflows, their bookkeeping and record actions (local activities); the retention
    purge."""
    discover()  # every action type registered before the first step runs
    return Worker(
        client,
        task_queue=task_queue or get_settings().task_queue,
        workflows=[AutomationRunWorkflow, PurgeRunHistoryWorkflow],
        activities=[*ALL_ACTIVITIES, purge_run_history],
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
        max_concurrent_local_activities=max_concurrent_activities,
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    )


def build_workers(client: Client, task_queue: str | None = None) -> list[Worker]:
    """The main worker plus one worker per external action family, on `<task_queue>-<family>`, whose
    queue Temporal rate-limits to the provider's documented limit across every worker process."""
    base = task_queue or get_settings().task_queue
    workers = [build_worker(client, base)]
    for family, per_second in sorted(external_families().items()):
        workers.append(Worker(
            client, task_queue=f"{base}-{family}", activities=[execute_external_step],
            activity_executor=ThreadPoolExecutor(max_workers=8), max_concurrent_activities=8,
            max_task_queue_activities_per_second=per_second, graceful_shutdown_timeout=SHUTDOWN_GRACE,
        ))
    return workers
