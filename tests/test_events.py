"""The intake contract (S2): malformed events are refused with a clear error and start nothing."""

from __future__ import annotations

from typing import Any

import pytest

from starter.intake import EventRefused, parse_event
from tests.helpers import event


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e.update(event_id="42"), "event_id must be a UUID"),
    (lambda e: e.update(entity="invoice"), "entity"),
    (lambda e: e.update(action="merged"), "action"),
    (lambda e: e.update(company_id=0), "company_id"),
    (lambda e: e.pop("occurred_at"), "occurred_at"),
    (lambda e: e.update(occurred_at="2026-11-28T10:00:00"), "timezone"),
    (lambda e: e.update(source="csv"), "source"),
    (lambda e: e.update(previous=None), "`previous` (the old values of the changed fields) is required"),
    (lambda e: e.update(current=None), "`current` is required on a updated event"),
    (lambda e: e.update(current={"id": 7}), "record id 7 does not match entity_id 1"),
    (lambda e: e.update(source="automation"), "`chain` is set exactly when source is `automation`"),
    (lambda e: e.update(surprise=True), "surprise"),
])
def test_malformed_events_are_refused(change: Any, message: str) -> None:
    raw = event(1, current={"title": "t"}, previous={"title": "s"})
    change(raw)
    with pytest.raises(EventRefused) as err:
        parse_event(raw)
    assert message in str(err.value)


def test_delete_event_carries_the_last_state() -> None:
    parsed = parse_event(event(1, action="deleted", previous={"title": "Old", "value": 3}))
    assert parsed.current is None
    assert parsed.state == {"id": 1, "title": "Old", "value": 3}


def test_not_an_object() -> None:
    with pytest.raises(EventRefused, match="JSON object"):
        parse_event([1, 2])
