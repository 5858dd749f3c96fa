"""Test runs: a preview matches what the real run of the same event then does on the dev server; why an event
would not fire; test runs on an existing record; bad requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from temporalio.client import Client

from models.db import session_scope
from models.recordstore import create_record
from models.tables import Activity
from starter.intake import workflow_id_for
from starter.relay import publish_pending
from tests.api.conftest import Tenant
from tests.helpers import event, outcome, run_row, running_worker, steps_of

#: A step's status in a preview, and what the real run records for it.
REAL_STATUS = {"would_run": "succeeded", "would_wait": "succeeded", "would_fail": "failed", "skipped": "skipped"}

FOLLOW_UP: dict[str, Any] = {
    "name": "Follow up", "trigger": {"entity": "deal", "action": "updated"},
    "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3},
                           {"field": "value", "op": "gte", "value": 1000}]},
    "steps": [
        {"action": "activity.create",
         "params": {"subject": "Call {{person.name}} about {{deal.title}}", "type": "call", "due": {"in": "1 day"}}},
        {"when": {"all": [{"field": "pipeline_id", "op": "eq", "value": 9}]}, "action": "deal.update",
         "params": {"pipeline_id": 2}},
        {"action": "activity.create", "params": {"subject": "Ask {{organization.name}} for a budget"}},
        {"delay": {"for": "1 second"}},
        {"action": "deal.update", "params": {"value": "{{deal.value * 2}}"}},
    ],
}


@pytest.fixture
async def client(dev_env: Any) -> AsyncIterator[Client]:
    # The real dev server: these tests start real runs through the relay, as a deployment would.
    async with running_worker(dev_env.client):
        yield dev_env.client


def setup_deal(t: Tenant, **values: Any) -> tuple[int, int]:
    with session_scope() as s:
        person, _ = create_record(s, t.id, "person", {"name": "Grace", "email": "grace@example.com"},
                                  user_id=t.admin_id)
        deal, _ = create_record(s, t.id, "deal", {"title": "Big deal", "person_id": person.id, **values},
                                user_id=t.admin_id)
        assert deal.id is not None and person.id is not None
        return deal.id, person.id


def preview(api: TestClient, t: Tenant, automation_id: int, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/automations/{automation_id}/test-run", json=body, headers=t.rep)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def run_for_real(client: Client, api: TestClient, t: Tenant, automation_id: int,
                       sample: dict[str, Any]) -> str:
    """Send the previewed event through intake and wait for the run it starts."""
    assert api.post("/events", json=sample, headers=t.admin).status_code == 202
    while await publish_pending(client):
        pass
    run_id = workflow_id_for(automation_id, sample["event_id"])
    await outcome(client, run_id)
    return run_id


def assert_matches(result: dict[str, Any], run_id: str) -> None:
    run = run_row(run_id)
    assert (run.status, run.reason, run.conditions) == (result["status"], result["reason"], result["conditions"])
    steps = steps_of(run_id)
    assert [REAL_STATUS[p["status"]] for p in result["steps"]] == [s.status for s in steps]
    for previewed, step in zip(result["steps"], steps, strict=True):
        if previewed["kind"] == "action" and previewed["status"] != "skipped":
            assert previewed["params"] == step.params, step.step_index
        assert (previewed["error_type"], previewed["error_message"]) == (step.error_type, step.error_message)
        if previewed["status"] == "skipped":
            assert previewed["conditions"] == step.conditions


async def test_a_preview_matches_what_the_real_run_then_does(client: Client, api: TestClient,
                                                             tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    automation = api.post("/automations", json=FOLLOW_UP, headers=t.admin).json()["id"]
    deal_id, _ = setup_deal(t, pipeline_id=1, stage_id=3, value=5000)
    sample = event(t.id, entity_id=deal_id, user_id=t.rep_id, occurred_at="2026-11-27T23:30:00+00:00",
                   current={"id": deal_id, "title": "Big deal", "stage_id": 3, "value": 5000, "pipeline_id": 1,
                            "person_id": _person_of(deal_id)}, previous={"stage_id": 2})
    result = preview(api, t, automation, {"event": sample})
    assert (result["fires"], result["status"], result["automation_version"]) == (True, "failed", 1)
    assert result["conditions"]["held"] is True
    assert [c["actual"] for c in result["conditions"]["checks"]] == [3, 5000]
    assert [s["status"] for s in result["steps"]] == ["would_run", "skipped", "would_fail", "would_wait", "would_run"]
    first, _, failing, delay, last = result["steps"]
    assert first["params"] == {"subject": "Call Grace about Big deal", "type": "call", "due": {"in": "1 day"}}
    assert failing["error_type"] == "MergeFieldMissing" and "organization" in failing["error_message"]
    assert delay["delay"] == "1 second" and last["params"] == {"value": 10000}
    with session_scope() as s:  # a preview executes nothing
        assert s.exec(select(Activity).where(Activity.company_id == t.id)).all() == []

    run_id = await run_for_real(client, api, t, automation, result["event"])
    assert_matches(result, run_id)
    with session_scope() as s:
        subjects = s.exec(select(Activity.subject).where(Activity.company_id == t.id)).all()
    assert subjects == ["Call Grace about Big deal"]


def _person_of(deal_id: int) -> int:
    from models.tables import Deal

    with session_scope() as s:
        deal = s.get(Deal, deal_id)
        assert deal is not None and deal.person_id is not None
        return deal.person_id


async def test_a_preview_of_false_conditions_matches_the_skipped_run(client: Client, api: TestClient,
                                                                     tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    automation = api.post("/automations", json=FOLLOW_UP, headers=t.admin).json()["id"]
    sample = event(t.id, entity_id=77, current={"title": "Small deal", "stage_id": 3, "value": 300},
                   previous={"stage_id": 2})
    result = preview(api, t, automation, {"event": sample})
    assert (result["fires"], result["status"], result["steps"]) == (True, "skipped", [])
    assert result["reason"] == "conditions not met: conditions.all[1] (value gte 1000; actual 300)"
    assert_matches(result, await run_for_real(client, api, t, automation, result["event"]))


def test_why_an_event_would_not_fire(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    automation = api.post("/automations", json={**FOLLOW_UP, "run_for": [t.admin_id]}, headers=t.admin).json()["id"]
    changed = {"entity_id": 5, "current": {"title": "x", "stage_id": 3, "value": 5000}, "previous": {"stage_id": 2}}
    cases = [
        ({**changed, "action": "created", "previous": None}, "the automation triggers on deal updated, the event is "
                                                             "deal created"),
        ({**changed, "source": "import", "user_id": t.admin_id}, "events from data imports never trigger automations"),
        ({**changed, "user_id": t.rep_id}, f"the automation runs only for changes by users [{t.admin_id}]; this one "
                                           f"is by {t.rep_id}"),
    ]
    for sample, reason in cases:
        result = preview(api, t, automation, {"event": sample})
        assert (result["fires"], result["status"], result["reason"]) == (False, "not_fired", reason)
    assert preview(api, t, automation, {"event": {**changed, "user_id": t.admin_id}})["fires"] is True
    looped = {**changed, "user_id": t.admin_id, "source": "automation",
              "chain": {"depth": 1, "automation_ids": [automation], "run_id": "automation-x"}}
    stopped = preview(api, t, automation, {"event": looped})
    assert stopped["status"] == "stopped" and stopped["reason"].startswith("loop protection")
    api.post(f"/automations/{automation}/deactivate", headers=t.admin)
    inactive = preview(api, t, automation, {"event": {**changed, "user_id": t.admin_id}})
    assert inactive["reason"] == "the automation is inactive"


def test_a_test_run_on_an_existing_record(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t, other = tenant(), tenant()
    automation = api.post("/automations", json=FOLLOW_UP, headers=t.admin).json()["id"]
    deal_id, _ = setup_deal(t, stage_id=3, value=2000)
    result = preview(api, t, automation, {"record_id": deal_id, "previous": {"stage_id": 1}})
    assert result["event"]["entity_id"] == deal_id and result["event"]["user_id"] == t.rep_id
    assert result["event"]["current"]["title"] == "Big deal" and result["status"] == "failed"
    assert result["steps"][0]["params"]["subject"] == "Call Grace about Big deal"
    unchanged = preview(api, t, automation, {"record_id": deal_id})  # nothing changed: `changed_to` is false
    assert unchanged["status"] == "skipped" and "stage_id changed_to 3" in unchanged["reason"]

    other_deal, _ = setup_deal(other)
    missing = api.post(f"/automations/{automation}/test-run", json={"record_id": other_deal}, headers=t.admin)
    assert missing.status_code == 404 and missing.json()["detail"] == (
        f"deal {other_deal} does not exist in company {t.id}")


def test_bad_test_run_requests_name_the_problem(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    automation = api.post("/automations", json=FOLLOW_UP, headers=t.admin).json()["id"]

    def problems(body: Any) -> list[dict[str, str]]:
        response = api.post(f"/automations/{automation}/test-run", json=body, headers=t.admin)
        assert response.status_code == 422, response.text
        detail: list[dict[str, str]] = response.json()["detail"]
        return detail

    assert problems({})[0]["message"].startswith("give exactly one of `event`")
    assert problems({"event": {}, "record_id": 1})[0]["message"].startswith("give exactly one of `event`")
    assert problems({"event": {"current": {"title": "x"}}})[0] == {"path": "event.entity_id",
                                                                     "message": "Field required"}
    assert problems({"event": {"current": {"title": "x"}, "entity_id": 0}})[0]["path"] == "event.entity_id"
    assert problems({"event": {"entity_id": 5, "current": None}})[0] == {
        "path": "event", "message": "`current` is required on a updated event"}
    foreign = api.post(f"/automations/{automation}/test-run", headers=t.admin,
                       json={"event": {"company_id": t.id + 1000, "entity_id": 5, "current": {"title": "x"}}})
    assert foreign.status_code == 403
