"""Event intake over HTTP: S2 events and Pipedrive webhooks (v1, v2: create, change, delete, merge) become the right
runs on the dev server; bad input gets a 4xx naming the problem and leaves nothing behind."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select
from temporalio.client import Client

from models.db import session_scope
from models.tables import Activity, CustomFieldDefinition, EventOutbox, ReceivedEvent
from starter.intake import workflow_id_for
from starter.relay import publish_pending
from tests.api.conftest import Tenant
from tests.helpers import create_automation, event, outcome, running_worker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pipedrive"
REGION = "d4de1c1518b4531717c676029a45911c340390a6"  # a custom field, keyed by Pipedrive's hash


@pytest.fixture
async def client(dev_env: Any) -> AsyncIterator[Client]:
    # The real dev server: these tests start real runs through the relay, as a deployment would.
    async with running_worker(dev_env.client):
        yield dev_env.client


def fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    if payload["meta"].get("id") == "REPLACED-BY-THE-TEST":
        payload["meta"]["id"] = str(uuid.uuid4())  # a v2 event id of its own for each test's company
    return payload


async def finished_runs(client: Client, api: TestClient, headers: dict[str, str], event_id: str,
                        ) -> list[dict[str, Any]]:
    """Let the relay hand accepted events to intake, wait for the event's runs, and return them."""
    while await publish_pending(client):
        pass
    with session_scope() as s:
        received = s.get(ReceivedEvent, event_id)
        assert received is not None, f"event {event_id} never reached intake"
    for firing in received.matched:  # a run's row is written once its workflow runs: wait for each
        await outcome(client, workflow_id_for(firing["automation_id"], event_id))
    runs: list[dict[str, Any]] = api.get("/runs", params={"event_id": event_id}, headers=headers).json()
    return sorted(runs, key=lambda r: r["automation_name"])


def subjects(company_id: int) -> list[str]:
    with session_scope() as s:
        return sorted(s.exec(select(Activity.subject).where(Activity.company_id == company_id)).all())


def outbox_count(company_id: int) -> int:
    with session_scope() as s:
        return int(s.exec(select(func.count()).select_from(EventOutbox)
                          .where(EventOutbox.company_id == company_id)).one())


def activity_step(subject: str) -> dict[str, Any]:
    return {"action": "activity.create", "params": {"subject": subject}}


async def test_events_one_or_a_batch_are_accepted_then_run(client: Client, api: TestClient,
                                                           tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    create_automation(t.admin_id, {
        "name": "Stage 3", "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3}]},
        "steps": [activity_step("Call about {{deal.title}}")]})
    moved = event(t.id, entity_id=42, current={"title": "Big deal", "stage_id": 3}, previous={"stage_id": 2})
    response = api.post("/events", json=moved, headers=t.admin)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": [{"event_id": moved["event_id"], "duplicate": False}]}
    again = api.post("/events", json=moved, headers=t.admin)
    assert again.json() == {"accepted": [{"event_id": moved["event_id"], "duplicate": True}]}

    small = event(t.id, entity_id=43, current={"title": "Small deal", "stage_id": 2}, previous={"stage_id": 1})
    other = event(t.id, entity_id=44, current={"title": "Other deal", "stage_id": 3}, previous={"stage_id": 1})
    batch = api.post("/events", json=[small, other], headers=t.admin)
    assert batch.status_code == 202 and [a["duplicate"] for a in batch.json()["accepted"]] == [False, False]

    [run] = await finished_runs(client, api, t.admin, moved["event_id"])
    assert (run["status"], run["entity_id"], run["automation_name"]) == ("succeeded", 42, "Stage 3")
    [skipped] = await finished_runs(client, api, t.admin, small["event_id"])
    assert skipped["status"] == "skipped" and "stage_id changed_to 3" in skipped["reason"]
    assert (await finished_runs(client, api, t.admin, other["event_id"]))[0]["status"] == "succeeded"
    assert subjects(t.id) == ["Call about Big deal", "Call about Other deal"]  # the duplicate ran once


def test_malformed_events_are_refused_with_paths_and_nothing_is_accepted(api: TestClient,
                                                                         tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    good = event(t.id, current={"title": "x"})
    no_current = {**event(t.id), "current": None}
    bad_entity = {**event(t.id, current={"title": "x"}), "entity": "invoice"}
    response = api.post("/events", json=[good, no_current, bad_entity], headers=t.admin)
    assert response.status_code == 422
    problems = {(e["path"], e["message"]) for e in response.json()["detail"]}
    assert ("events[1]", "`current` is required on a updated event") in problems
    assert any(path == "events[2].entity" for path, _ in problems)

    single = api.post("/events", json={**good, "event_id": "42"}, headers=t.admin)
    assert single.status_code == 422
    assert single.json()["detail"] == [{"path": "event.event_id", "message": "event_id must be a UUID"}]
    for body in ([], "an event", [good] * 501):
        assert api.post("/events", json=body, headers=t.admin).status_code == 422
    huge_id = api.post("/events", json={**good, "entity_id": 2**40}, headers=t.admin)
    assert huge_id.status_code == 422 and huge_id.json()["detail"][0]["path"] == "event.entity_id"
    nul = api.post("/events", json={**good, "current": {"title": "a\u0000b"}}, headers=t.admin)
    assert nul.status_code == 422 and "cannot be stored" in nul.json()["detail"][0]["message"]

    foreign = api.post("/events", json=event(t.id + 1000, current={"title": "x"}), headers=t.admin)
    assert foreign.status_code == 403 and "this token acts for company" in foreign.json()["detail"]
    assert outbox_count(t.id) == 0  # nothing of the refused requests was kept

    assert api.post("/events", json=good, headers=t.admin).status_code == 202
    reused = api.post("/events", json={**good, "current": {"title": "changed"}}, headers=t.admin)
    assert reused.status_code == 409 and "already received with a different payload" in reused.json()["detail"]
    assert outbox_count(t.id) == 1


def pipedrive_automations(t: Tenant) -> None:
    with session_scope() as s:
        s.add(CustomFieldDefinition(company_id=t.id, entity="deal", key=REGION, name="Region", field_type="string"))
    for definition in [
        {"name": "New deal", "trigger": {"entity": "deal", "action": "created"},
         "steps": [activity_step("New deal {{deal.title}} ({{deal.value}} {{deal.currency}})")]},
        {"name": "EMEA deal at stage 3", "trigger": {"entity": "deal", "action": "updated"},
         "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3},
                                {"field": f"custom_fields.{REGION}", "op": "eq", "value": "EMEA"}]},
         "steps": [activity_step("Stage 3: {{deal.title}}, person {{deal.person_id}}, org {{deal.organization_id}}")]},
        {"name": "Deal deleted", "trigger": {"entity": "deal", "action": "deleted"},
         "steps": [activity_step("Deleted: {{deal.title}}")]},
        {"name": "Person merged away", "trigger": {"entity": "person", "action": "deleted"},
         "steps": [activity_step("Gone: {{person.name}} <{{person.email}}>")]},
        {"name": "Phone changed", "trigger": {"entity": "person", "action": "updated"},
         "conditions": {"all": [{"field": "phone", "op": "changed"}]},
         "steps": [activity_step("Phone of {{person.name}} is now {{person.phone}}")]},
    ]:
        create_automation(t.admin_id, definition)


PIPEDRIVE_CASES = {
    "v2": [("v2_deal_create", "New deal", "New deal Globex renewal (5000 EUR)"),
           ("v2_deal_change", "EMEA deal at stage 3", "Stage 3: Globex renewal, person 12, org 5"),
           ("v2_deal_delete", "Deal deleted", "Deleted: Globex renewal"),
           ("v2_person_merge_delete", "Person merged away", "Gone: Grace Hopper <g.hopper@globex.example>"),
           ("v2_person_merge_change", "Phone changed", "Phone of Grace Hopper is now +33 1 00 00 00 00")],
    "v1": [("v1_deal_added", "New deal", "New deal Globex renewal (5000 EUR)"),
           ("v1_deal_updated", "EMEA deal at stage 3", "Stage 3: Globex renewal, person 12, org 5"),
           ("v1_deal_deleted", "Deal deleted", "Deleted: Globex renewal"),
           ("v1_person_merge_deleted", "Person merged away", "Gone: Grace Hopper <g.hopper@globex.example>"),
           ("v1_person_merged", "Phone changed", "Phone of Grace Hopper is now +33 1 00 00 00 00")],
}


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_pipedrive_webhooks_start_the_right_runs(client: Client, api: TestClient,
                                                       tenant: Callable[..., Tenant], version: str) -> None:
    t = tenant()
    pipedrive_automations(t)
    expected_subjects = []
    for name, automation, subject in PIPEDRIVE_CASES[version]:
        payload = fixture(name)
        response = api.post("/webhooks/pipedrive", json=payload, auth=("pipedrive", t.admin_token))
        assert response.status_code == 202, (name, response.text)
        receipt = response.json()
        assert receipt["status"] == "accepted", name
        [run] = await finished_runs(client, api, t.admin, receipt["event_id"])
        assert (run["automation_name"], run["status"]) == (automation, "succeeded"), (name, run)
        expected_subjects.append(subject)
        assert subjects(t.id) == sorted(expected_subjects), name
        # Pipedrive retries until it gets a 2xx: the same delivery again starts nothing new.
        retried = {**payload, "retry": 1} if version == "v1" else {**payload, "meta": {**payload["meta"], "attempt": 2}}
        assert api.post("/webhooks/pipedrive", json=retried, auth=("x", t.admin_token)).json()["status"] == "duplicate"
    with session_scope() as s:
        runs = api.get("/runs", headers=t.admin).json()
        assert len(runs) == 5 and {r["status"] for r in runs} == {"succeeded"}
        event = s.exec(select(EventOutbox).where(EventOutbox.company_id == t.id)
                       .order_by(EventOutbox.id)).first()  # type: ignore[arg-type]
    assert event is not None and event.payload["current"]["custom_fields"] == {REGION: "EMEA"}
    assert event.payload["current"]["organization_id"] == 5 and event.payload["user_id"] == 123


def test_the_pipedrive_webhook_needs_basic_auth_and_answers_bad_payloads_with_4xx(
        api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    payload = fixture("v2_deal_create")
    unauthenticated = api.post("/webhooks/pipedrive", json=payload)
    assert unauthenticated.status_code == 401 and unauthenticated.headers["www-authenticate"] == "Basic"
    assert api.post("/webhooks/pipedrive", json=payload, headers=t.admin).status_code == 401  # bearer: not here
    assert api.post("/webhooks/pipedrive", json=payload, auth=("pipedrive", "wrong")).status_code == 401

    def problems(body: Any) -> list[dict[str, str]]:
        response = api.post("/webhooks/pipedrive", json=body, auth=("pipedrive", t.admin_token))
        assert response.status_code == 422, response.text
        detail: list[dict[str, str]] = response.json()["detail"]
        return detail

    meta = payload["meta"]
    assert problems({"data": {}})[0]["path"] == "meta"
    assert problems({**payload, "meta": {**meta, "action": "exploded"}})[0]["path"] == "meta.action"
    assert problems({**payload, "meta": {**meta, "entity_id": "abc"}})[0] == {
        "path": "meta.entity_id",
        "message": "'abc' is not a record id here (a positive integer, as a number or string)"}
    assert problems({**payload, "meta": {**meta, "timestamp": "yesterday"}})[0]["path"] == "meta.timestamp"
    assert problems({**payload, "meta": {**meta, "timestamp": 10**20}})[0]["path"] == "meta.timestamp"
    assert problems({**payload, "data": ["not", "an", "object"]})[0]["path"] == "data"
    lead = {**payload, "meta": {**meta, "entity": "lead", "entity_id": "b6c1d3c4-1d2e-4f60-9a7b-0c1d2e3f4a5b"}}
    assert problems(lead)[0]["path"] == "meta.entity_id"
    assert problems({**payload, "meta": {**meta, "action": "change"}, "data": None})[0]["path"] == "data"
    assert api.post("/webhooks/pipedrive", content=b"not json", auth=("p", t.admin_token),
                    headers={"Content-Type": "application/json"}).status_code == 422
    assert outbox_count(t.id) == 0

    note = api.post("/webhooks/pipedrive", json=fixture("v2_note_create"), auth=("pipedrive", t.admin_token))
    assert note.status_code == 200
    assert note.json()["status"] == "ignored" and note.json()["reason"].startswith("note events trigger no automation")
    assert outbox_count(t.id) == 0
