"""Merge fields render strictly; due dates follow the trigger time in the company's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from activities.dates import DueIn, DueNext, resolve_due
from activities.errors import MergeFieldMissing
from activities.merge import check_template, render

CONTEXT = {"deal": {"id": 42, "title": "Big deal", "value": 5000.0}, "person": {"name": "Grace"}}


def test_render_keeps_types_of_single_expressions_and_formats_text() -> None:
    rendered = render({"deal_id": "{{deal.id}}", "subject": "Call {{ person.name }} about {{deal.title}}",
                       "value": "{{ deal.value * 2 }}", "items": ["{{deal.id}}", 3], "plain": 7}, CONTEXT)
    assert rendered == {"deal_id": 42, "subject": "Call Grace about Big deal", "value": 10000.0,
                        "items": [42, 3], "plain": 7}


@pytest.mark.parametrize("template", ["{{person.email}}", "Hello {{person.email}}", "{{organization.name}}"])
def test_missing_merge_field_is_an_error_naming_the_param(template: str) -> None:
    with pytest.raises(MergeFieldMissing) as err:
        render({"to": template}, CONTEXT)
    assert "params.to" in str(err.value) and template in str(err.value)


def test_sandbox_refuses_unsafe_expressions() -> None:
    with pytest.raises(Exception, match=r"unsafe|not safely|access"):
        render({"x": "{{ deal.__class__.__mro__ }}"}, CONTEXT)


def test_save_time_template_check() -> None:
    assert check_template("{{deal.title}} for {{person.name}}", "deal") is None
    assert "unknown merge field root" in (check_template("{{project.title}}", "person") or "")
    assert "syntax error" in (check_template("{{deal.title", "deal") or "")


def test_due_dates_are_relative_to_the_trigger_in_the_company_time_zone() -> None:
    # 23:30 UTC on Friday 27 Nov is already Saturday 28 Nov in Paris.
    occurred = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    assert resolve_due(None, occurred, "UTC") == date(2026, 11, 27)
    assert resolve_due(None, occurred, "Europe/Paris") == date(2026, 11, 28)
    assert resolve_due(DueIn.model_validate({"in": "1 day"}), occurred, "Europe/Paris") == date(2026, 11, 29)
    assert resolve_due(DueIn.model_validate({"in": "2 weeks"}), occurred, "UTC") == date(2026, 12, 11)
    assert resolve_due(DueIn.model_validate({"in": "1 month"}), occurred, "UTC") == date(2026, 12, 27)
    # "next friday" is strictly after the trigger date.
    assert resolve_due(DueNext(next="friday"), occurred, "UTC") == date(2026, 12, 4)
    assert resolve_due(DueNext(next="monday"), occurred, "Europe/Paris") == date(2026, 11, 30)
    assert resolve_due(date(2027, 1, 5), occurred, "UTC") == date(2027, 1, 5)


def test_bad_relative_due_is_refused() -> None:
    with pytest.raises(ValueError, match="relative date"):
        DueIn.model_validate({"in": "soon"})
