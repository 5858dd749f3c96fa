"""Builds the worker: the run workflow and every activity, nothing else."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.registry import discover
from activities.runs import ALL_ACTIVITIES
from models.settings import get_settings
from workflows.run import AutomationRunWorkflow


def build_worker(client: Client, task_queue: str | None = None, *, max_concurrent_activities: int = 32) -> Worker:
    discover()  # every action type registered before the first step runs
    return Worker(
        client,
        task_queue=task_queue or get_settings().task_queue,
        workflows=[AutomationRunWorkflow],
        activities=ALL_ACTIVITIES,
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
        max_concurrent_local_activities=max_concurrent_activities,
    )
