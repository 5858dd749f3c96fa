"""Pure, deterministic evaluation of condition trees against an entity event, with an explanation.

Runs inside workflow code, so it must not touch the clock, the network or the database.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from models.definitions import Condition, ConditionGroup

_MISSING = object()


def resolve(record: dict[str, Any] | None, field: str) -> Any:
    """`custom_fields.budget` walks into nested dicts; a field the record lacks resolves to _MISSING."""
    value: Any = record if record is not None else {}
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _is_empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == "" or value == [] or value == {}


def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Compare like with like: numbers as numbers (even when sent as strings), ISO dates as dates."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a, b
    try:
        if isinstance(a, int | float) or isinstance(b, int | float):
            return float(a), float(b)
    except (TypeError, ValueError):
        return str(a), str(b)
    if isinstance(a, str) and isinstance(b, str):
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                return parse(a), parse(b)
            except ValueError:
                continue
    if isinstance(a, date) or isinstance(b, date):
        return str(a), str(b)
    return a, b


def _equal(a: Any, b: Any) -> bool:
    a = None if a is _MISSING else a
    if a is None or b is None:
        return a is None and b is None
    x, y = _coerce_pair(a, b)
    if isinstance(x, str) and isinstance(y, str):
        return x.casefold() == y.casefold()
    return bool(x == y)


def _compare(a: Any, b: Any, op: str) -> bool:
    if _is_empty(a) or b is None:
        return False
    x, y = _coerce_pair(a, b)
    try:
        if op == "gt":
            return bool(x > y)
        if op == "gte":
            return bool(x >= y)
        if op == "lt":
            return bool(x < y)
        return bool(x <= y)
    except TypeError:
        return False


def _contains(a: Any, b: Any) -> bool:
    if _is_empty(a):
        return False
    if isinstance(a, list):
        return any(_equal(item, b) for item in a)
    return str(b).casefold() in str(a).casefold()


def check(condition: Condition, current: dict[str, Any] | None, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Evaluate one leaf; returns what was compared and whether it held."""
    actual = resolve(current, condition.field)
    op, expected = condition.op, condition.value
    # `previous` holds only the changed fields: a field absent from it did not change.
    before = resolve(previous, condition.field)
    was_changed = before is not _MISSING and not _equal(actual, before)
    if op == "eq":
        held = _equal(actual, expected)
    elif op == "ne":
        held = not _equal(actual, expected)
    elif op in ("gt", "gte", "lt", "lte"):
        held = _compare(actual, expected, op)
    elif op == "contains":
        held = _contains(actual, expected)
    elif op == "not_contains":
        held = not _contains(actual, expected)
    elif op == "in":
        held = any(_equal(actual, item) for item in expected)
    elif op == "not_in":
        held = not any(_equal(actual, item) for item in expected)
    elif op == "is_empty":
        held = _is_empty(actual)
    elif op == "is_not_empty":
        held = not _is_empty(actual)
    elif op == "changed":
        held = was_changed
    elif op == "changed_to":
        held = was_changed and _equal(actual, expected)
    else:  # changed_from
        held = was_changed and before is not _MISSING and _equal(before, expected)
    result: dict[str, Any] = {
        "field": condition.field,
        "op": op,
        "value": expected,
        "actual": None if actual is _MISSING else actual,
        "held": held,
    }
    if op in ("changed", "changed_to", "changed_from"):
        result["changed"] = was_changed
        result["previous"] = None if before is _MISSING else before
    return result


def evaluate(
    group: ConditionGroup | None,
    current: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    path: str = "conditions",
) -> dict[str, Any]:
    """Evaluate every leaf (no short-circuit, so the explanation is complete).

    Returns {"held": bool, "checks": [{path, field, op, value, actual, held}, ...], "failed": [paths]}.
    An absent group holds.
    """
    if group is None:
        return {"held": True, "checks": [], "failed": []}
    checks: list[dict[str, Any]] = []
    held = _evaluate_group(group, current, previous, path, checks)
    failed = [c["path"] for c in checks if not c["held"]]
    return {"held": held, "checks": checks, "failed": failed}


def _evaluate_group(group: ConditionGroup, current: dict[str, Any] | None, previous: dict[str, Any] | None,
                    path: str, checks: list[dict[str, Any]]) -> bool:
    results = []
    for index, child in enumerate(group.children):
        child_path = f"{path}.{group.kind}[{index}]"
        if isinstance(child, ConditionGroup):
            results.append(_evaluate_group(child, current, previous, child_path, checks))
        else:
            outcome = check(child, current, previous)
            checks.append({"path": child_path, **outcome})
            results.append(outcome["held"])
    return all(results) if group.kind == "all" else any(results)


def explain_failure(evaluation: dict[str, Any]) -> str:
    """A one-line reason for the run history: which conditions were false."""
    parts = []
    for c in evaluation["checks"]:
        if not c["held"]:
            detail = f"actual {c['actual']!r}"
            if "changed" in c:
                detail += f", changed from {c['previous']!r}" if c["changed"] else ", unchanged"
            value = "" if c["op"] == "changed" else f" {c['value']!r}"
            parts.append(f"{c['path']} ({c['field']} {c['op']}{value}; {detail})")
    return "conditions not met: " + ", ".join(parts)
