"""Reading Pipedrive records and webhooks as our records and S2 events (pure mapping, no server)."""

from __future__ import annotations

from typing import Any

import pytest

from models.events import EntityEvent
from starter.intake import EventRefused
from starter.pipedrive import WebhookIgnored, record, to_event


def test_records_take_our_field_names_and_plain_values() -> None:
    v1_person = {"id": 12, "company_id": 99, "name": "Grace", "user_id": 7, "org_id": {"name": "Globex", "value": 5},
                 "email": [{"value": "old@x.example", "primary": False}, {"value": "grace@x.example", "primary": True}],
                 "phone": [{"value": "", "primary": True}], "add_time": "2026-11-27 09:12:44",
                 "open_deals_count": 1, "a" * 40: "EMEA"}
    assert record("person", v1_person) == {
        "name": "Grace", "owner_id": 7, "organization_id": 5, "email": "grace@x.example", "phone": None,
        "created_at": "2026-11-27T09:12:44+00:00", "custom_fields": {"a" * 40: "EMEA"}}
    v2_lead = {"id": "b6c1d3c4-1d2e-4f60-9a7b-0c1d2e3f4a5b", "title": "Lead", "owner_id": 7, "person_id": 12,
               "organization_id": None, "value": {"amount": 123, "currency": "EUR"},
               "custom_fields": {"k1": {"type": "monetary", "value": 5, "currency": "EUR"},
                                 "k2": {"type": "enum", "id": 3}, "k3": {"type": "set", "values": [{"id": 1}]},
                                 "k4": None}}
    assert record("lead", v2_lead) == {
        "title": "Lead", "owner_id": 7, "person_id": 12, "organization_id": None, "value": 123,
        "custom_fields": {"k1": 5, "k2": 3, "k3": [1], "k4": None}}
    assert record("organization", {"name": "Globex", "address": {"value": "1 Main St", "country": "FR"}}) == {
        "name": "Globex", "address": "1 Main St"}


def v1(action: str, current: dict[str, Any] | None, previous: dict[str, Any] | None, **meta: Any) -> dict[str, Any]:
    return {"v": 1, "event": f"{action}.deal", "retry": 0, "current": current, "previous": previous,
            "meta": {"v": 1, "action": action, "object": "deal", "id": 746, "company_id": 1, "user_id": 7,
                     "timestamp": 1795860000, "timestamp_micro": 1795860000201734, "change_source": "app", **meta}}


def test_a_v1_update_keeps_only_the_changed_fields_and_a_retry_is_the_same_event() -> None:
    before = {"id": 746, "title": "Globex", "stage_id": 2, "value": 5000, "label": None}
    after = {**before, "stage_id": 3, "label": "hot"}
    event = to_event(v1("updated", after, before), company_id=4)
    assert event["previous"] == {"stage_id": 2}
    assert event["current"] == {"id": 746, "title": "Globex", "stage_id": 3, "value": 5000}
    assert (event["company_id"], event["entity_id"], event["user_id"], event["action"]) == (4, 746, 7, "updated")
    assert event["occurred_at"] == "2026-11-28T10:00:00.201734+00:00"
    EntityEvent.model_validate(event)
    retried = {**v1("updated", after, before), "retry": 2}
    assert to_event(retried, company_id=4)["event_id"] == event["event_id"]
    assert to_event(v1("updated", after, before), company_id=5)["event_id"] != event["event_id"]


@pytest.mark.parametrize(("source", "expected"), [("app", "app"), ("api", "api"), (None, "app"),
                                                  ("marketplace_app", "api"), ("import", "import")])
def test_the_change_source_becomes_the_events_source(source: str | None, expected: str) -> None:
    assert to_event(v1("added", {"id": 746, "title": "x"}, None, change_source=source), 1)["source"] == expected


def test_a_v1_delete_carries_the_last_state_and_other_objects_are_ignored() -> None:
    deleted = to_event(v1("deleted", None, {"id": 746, "title": "Globex"}), 1)
    assert (deleted["current"], deleted["previous"]) == (None, {"id": 746, "title": "Globex"})
    with pytest.raises(WebhookIgnored, match="product events trigger no automation"):
        to_event({"meta": {"action": "added", "object": "product", "id": 1, "timestamp": 1}}, 1)
    with pytest.raises(EventRefused) as refused:
        to_event({"meta": {"action": "added", "id": 1}, "current": []}, 1)
    assert [e["path"] for e in refused.value.errors] == ["meta.object", "current"]
