"""Condition evaluation (pure): every op, groups, coercion, and the explanation of what was false."""

from __future__ import annotations

from typing import Any

import pytest

from models.definitions import Condition, ConditionGroup
from workflows.conditions import check, evaluate, explain_failure

DEAL = {"id": 42, "title": "Big Deal", "value": 5000, "stage_id": 3, "status": "open", "person_id": None,
        "expected_close_date": "2026-12-15", "custom_fields": {"region": "EMEA", "tags": ["vip", "renewal"]}}


def held(field: str, op: str, value: Any = None, current: dict[str, Any] | None = None,
         previous: dict[str, Any] | None = None) -> bool:
    return bool(check(Condition(field=field, op=op, value=value), current or DEAL, previous)["held"])


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("stage_id", "eq", 3, True), ("stage_id", "eq", "3", True), ("stage_id", "eq", 4, False),
    ("title", "eq", "big deal", True),  # text compares case-insensitively, like the CRM's filters
    ("stage_id", "ne", 4, True), ("stage_id", "ne", 3, False),
    ("value", "gt", 4999, True), ("value", "gt", 5000, False),
    ("value", "gte", 5000, True), ("value", "gte", 5001, False),
    ("value", "lt", 5001, True), ("value", "lt", 5000, False),
    ("value", "lte", 5000, True), ("value", "lte", 4999, False),
    ("expected_close_date", "gt", "2026-12-01", True), ("expected_close_date", "lt", "2026-12-01", False),
    ("title", "contains", "big", True), ("title", "contains", "small", False),
    ("title", "not_contains", "small", True), ("title", "not_contains", "deal", False),
    ("custom_fields.tags", "contains", "vip", True),
    ("stage_id", "in", [1, 3], True), ("stage_id", "in", [1, 2], False),
    ("stage_id", "not_in", [1, 2], True), ("stage_id", "not_in", [3], False),
    ("person_id", "is_empty", None, True), ("title", "is_empty", None, False),
    ("missing_field", "is_empty", None, True),
    ("title", "is_not_empty", None, True), ("person_id", "is_not_empty", None, False),
    ("custom_fields.region", "eq", "EMEA", True), ("custom_fields.region", "ne", "EMEA", False),
    ("person_id", "gt", 1, False),
])
def test_passive_ops(field: str, op: str, value: Any, expected: bool) -> None:
    assert held(field, op, value) is expected


def test_changed_needs_the_field_in_previous_with_another_value() -> None:
    assert held("stage_id", "changed", previous={"stage_id": 2})
    assert not held("stage_id", "changed", previous={"value": 10})
    assert not held("stage_id", "changed", previous={"stage_id": 3})  # reported but same value
    assert held("person_id", "changed", previous={"person_id": 7})  # set to empty is a change


def test_changed_to_and_changed_from() -> None:
    assert held("stage_id", "changed_to", 3, previous={"stage_id": 2})
    assert not held("stage_id", "changed_to", 3, previous={})  # already at 3, not changed
    assert not held("stage_id", "changed_to", 4, previous={"stage_id": 2})
    assert held("stage_id", "changed_from", 2, previous={"stage_id": 2})
    assert not held("stage_id", "changed_from", 1, previous={"stage_id": 2})
    assert not held("stage_id", "changed_from", 3, previous={})
    assert held("custom_fields.region", "changed_from", "APAC", previous={"custom_fields": {"region": "APAC"}})


def test_all_and_any_groups_nest_and_explain() -> None:
    group = ConditionGroup.model_validate({"all": [
        {"field": "stage_id", "op": "changed_to", "value": 3},
        {"any": [{"field": "value", "op": "gte", "value": 10000},
                 {"field": "title", "op": "contains", "value": "big"}]},
    ]})
    result = evaluate(group, DEAL, {"stage_id": 2})
    assert result["held"] is True
    assert [c["path"] for c in result["checks"]] == [
        "conditions.all[0]", "conditions.all[1].any[0]", "conditions.all[1].any[1]"]
    assert result["failed"] == ["conditions.all[1].any[0]"]  # an `any` may hold with a false member

    result = evaluate(group, {**DEAL, "title": "Small"}, {"stage_id": 2})
    assert result["held"] is False
    reason = explain_failure(result)
    assert "conditions.all[1].any[0] (value gte 10000; actual 5000)" in reason
    assert "conditions.all[1].any[1] (title contains 'big'; actual 'Small')" in reason


def test_no_conditions_hold() -> None:
    assert evaluate(None, DEAL, None) == {"held": True, "checks": [], "failed": []}


def test_the_reason_of_a_false_active_condition_says_whether_the_field_changed() -> None:
    group = ConditionGroup.model_validate({"all": [{"field": "stage_id", "op": "changed_to", "value": 3},
                                                  {"field": "value", "op": "changed"}]})
    reason = explain_failure(evaluate(group, {**DEAL, "stage_id": 4}, {"stage_id": 2}))
    assert "conditions.all[0] (stage_id changed_to 3; actual 4, changed from 2)" in reason
    assert "conditions.all[1] (value changed; actual 5000, unchanged)" in reason
