"""Metrics on the real dev server: a worker whose client has METRICS_ADDRESS serves Prometheus metrics, the SDK's
and the engine's own (runs by status, step failures by error type, event-to-first-step latency)."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from typing import Any

import pytest

from models.settings import get_settings
from starter.client import connect
from starter.intake import emit
from tests.helpers import create_automation, event, outcome, running_worker, wait_for
from tests.test_encryption import free_port

pytestmark = pytest.mark.integration


def scrape(url: str) -> dict[str, float]:
    """`name{labels}` -> value, for every sample of the endpoint."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def sample(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(value for key, value in samples.items()
               if re.fullmatch(rf"{name}\{{.*\}}", key) and all(w in key for w in wanted))


async def test_the_metrics_endpoint_reports_runs_by_status(dev_env: Any, company_factory: Any) -> None:
    settings = get_settings()
    address = f"127.0.0.1:{free_port()}"
    settings.metrics_address = address
    try:
        client = await connect(dev_env.client.service_client.config.target_host)
    finally:
        settings.metrics_address = ""
    c = company_factory()
    create_automation(c.admin_id, {
        "name": "Measured", "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "value", "op": "gte", "value": 100}]},
        "steps": [{"action": "activity.create", "params": {"subject": "Call {{deal.title}}"}},
                  {"when": {"all": [{"field": "value", "op": "gte", "value": 1000}]},
                   "action": "activity.create", "params": {"subject": "Call {{person.name}}"}}]})
    async with running_worker(client):
        queue = settings.task_queue
        values = [150, 200, 5000, 10]  # succeeded, succeeded, failed (no person), skipped (conditions)
        firings = [f for v in values for f in await emit(client, event(c.id, current={"title": "D", "value": v}))]
        results = await asyncio.gather(*(outcome(client, f.workflow_id) for f in firings))
    assert [r.status for r in results] == ["succeeded", "succeeded", "failed", "skipped"]

    url = f"http://{address}/metrics"

    def reported() -> dict[str, float] | None:
        samples = scrape(url)
        return samples if sample(samples, "crm_automation_runs_total", task_queue=queue) == 4 else None

    samples = await wait_for(reported, timeout=10, interval=0.2)
    assert sample(samples, "crm_automation_runs_total", task_queue=queue, status="succeeded") == 2
    assert sample(samples, "crm_automation_runs_total", task_queue=queue, status="failed") == 1
    assert sample(samples, "crm_automation_runs_total", task_queue=queue, status="skipped") == 1
    assert sample(samples, "crm_automation_step_failures_total", task_queue=queue, action="activity.create",
                  error_type="MergeFieldMissing") == 1
    # Three runs reached their first step, each within seconds of its event.
    assert sample(samples, "crm_automation_event_to_first_step_seconds_count", task_queue=queue) == 3
    assert sample(samples, "crm_automation_event_to_first_step_seconds_bucket", task_queue=queue, le="10") == 3
    # The SDK's own metrics come from the same endpoint.
    assert sample(samples, "temporal_workflow_completed_total", task_queue=queue) == 4
