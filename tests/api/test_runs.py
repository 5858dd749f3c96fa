"""The run history API: filters (automation, record, status, event, time range), one run with its steps and
its Temporal UI link, and isolation between companies."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from models.db import session_scope
from models.tables import AutomationRun, StepResult
from tests.api.conftest import Tenant

NOW = datetime.now(UTC)


def add_run(company_id: int, *, automation_id: int = 1, entity_id: int = 7, status: str = "succeeded",
            started_at: datetime = NOW, steps: list[StepResult] | None = None) -> AutomationRun:
    event_id = str(uuid.uuid4())
    run = AutomationRun(id=f"automation-{automation_id}-event-{event_id}", company_id=company_id,
                        automation_id=automation_id, automation_version=1, automation_name=f"A{automation_id}",
                        event_id=event_id, entity="deal", entity_id=entity_id, trigger_action="updated",
                        status=status, conditions={"held": True, "checks": [], "failed": []},
                        event={"event_id": event_id}, started_at=started_at, updated_at=started_at,
                        finished_at=started_at)
    with session_scope() as s:
        s.add(run)
        s.flush()
        for step in steps or []:
            step.run_id = run.id
            s.add(step)
    return run


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()]


def test_runs_are_filtered_by_automation_record_status_event_and_time(api: TestClient,
                                                                       tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    old = add_run(t.id, started_at=NOW - timedelta(days=3))
    failed = add_run(t.id, automation_id=2, status="failed", started_at=NOW - timedelta(hours=1))
    other_record = add_run(t.id, entity_id=8, started_at=NOW - timedelta(minutes=1))
    h = t.rep
    assert ids(api.get("/runs", headers=h)) == [other_record.id, failed.id, old.id]  # newest first
    assert ids(api.get("/runs", params={"automation_id": 2}, headers=h)) == [failed.id]
    assert ids(api.get("/runs", params={"entity": "deal", "record_id": 7}, headers=h)) == [failed.id, old.id]
    assert ids(api.get("/runs", params={"status": "failed"}, headers=h)) == [failed.id]
    assert ids(api.get("/runs", params={"event_id": old.event_id}, headers=h)) == [old.id]
    since = (NOW - timedelta(days=1)).isoformat()
    until = (NOW - timedelta(minutes=30)).isoformat()
    assert ids(api.get("/runs", params={"since": since, "until": until}, headers=h)) == [failed.id]
    assert ids(api.get("/runs", params={"limit": 1, "offset": 1}, headers=h)) == [failed.id]

    for bad in ({"status": "exploded"}, {"entity": "invoice"}, {"since": "2026-11-28T10:00:00"},
                {"event_id": "not-a-uuid"}, {"limit": 0}, {"record_id": 2**40}):
        response = api.get("/runs", params=bad, headers=h)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["path"] == next(iter(bad))


def test_one_run_shows_its_steps_and_links_to_the_temporal_ui(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    run = add_run(t.id, status="failed", steps=[
        StepResult(run_id="", step_index=0, kind="action", action="activity.create", status="succeeded",
                   attempts=1, params={"subject": "Call"}, output={"id": 3}, started_at=NOW, finished_at=NOW),
        StepResult(run_id="", step_index=1, kind="action", action="deal.create", status="failed", attempts=1,
                   params={"title": "Upsell"}, error_type="OpenDealLimitReached",
                   error_message="open-deal limit reached", started_at=NOW, finished_at=NOW),
        StepResult(run_id="", step_index=2, kind="action", action="deal.update", status="skipped",
                   conditions={"held": False, "checks": [], "failed": ["steps[2].when.all[0]"]}),
    ])
    detail = api.get(f"/runs/{run.id}", headers=t.admin).json()
    assert detail["status"] == "failed" and detail["conditions"]["held"] is True
    assert detail["temporal_ui_url"] == f"http://localhost:8233/namespaces/default/workflows/{run.id}"
    assert [(s["index"], s["action"], s["status"]) for s in detail["steps"]] == [
        (0, "activity.create", "succeeded"), (1, "deal.create", "failed"), (2, "deal.update", "skipped")]
    assert detail["steps"][0]["params"] == {"subject": "Call"} and detail["steps"][0]["output"] == {"id": 3}
    assert (detail["steps"][1]["error_type"], detail["steps"][1]["error_message"]) == (
        "OpenDealLimitReached", "open-deal limit reached")
    assert detail["steps"][2]["conditions"]["failed"] == ["steps[2].when.all[0]"]
    assert detail["steps"][0]["started_at"] is not None
    short = run.id[: len("automation-1-event-") + 8]
    assert api.get(f"/runs/{short}", headers=t.admin).json()["id"] == run.id


def test_another_companys_runs_are_invisible(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    a, b = tenant(), tenant()
    run = add_run(a.id)
    assert api.get(f"/runs/{run.id}", headers=b.admin).status_code == 404
    assert api.get(f"/runs/{run.id[:30]}", headers=b.admin).status_code == 404
    assert api.get("/runs", params={"event_id": run.event_id}, headers=b.admin).json() == []
    assert ids(api.get("/runs", headers=a.admin)) == [run.id]
