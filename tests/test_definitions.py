"""Save-time validation: a bad definition is refused with the path of every problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from models.db import session_scope
from models.definitions import DefinitionError
from models.tables import CustomFieldDefinition
from starter.automations import validate_definition

VALID: dict[str, Any] = {
    "name": "Follow up qualified deals",
    "trigger": {"entity": "deal", "action": "updated"},
    "run_for": "anyone",
    "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3},
                           {"field": "value", "op": "gte", "value": 1000}]},
    "steps": [
        {"action": "activity.create",
         "params": {"subject": "Call about {{deal.title}}", "type": "call", "deal_id": "{{deal.id}}",
                    "due": {"in": "1 day"}}},
        {"when": {"all": [{"field": "pipeline_id", "op": "eq", "value": 1}]},
         "action": "deal.update", "params": {"pipeline_id": 2}},
        {"delay": {"for": "2 days"}},
        {"action": "person.update", "params": {"email": "{{person.email}}"}},
    ],
}


def errors_of(company_id: int, change: Any) -> list[dict[str, str]]:
    definition = copy.deepcopy(VALID)
    change(definition)
    with session_scope() as s, pytest.raises(DefinitionError) as err:
        validate_definition(s, company_id, definition)
    return err.value.errors


def test_the_spec_illustration_is_valid(company_factory: Any) -> None:
    c = company_factory()
    with session_scope() as s:
        definition = validate_definition(s, c.id, VALID)
    assert [getattr(step, "action", "delay") for step in definition.steps] == [
        "activity.create", "deal.update", "delay", "person.update"]


@pytest.mark.parametrize(("change", "path", "message"), [
    (lambda d: d.update(name=""), "name", "at least 1 character"),
    (lambda d: d.update(name="x" * 121), "name", "at most 120"),
    (lambda d: d.update(description="x" * 201), "description", "at most 200"),
    (lambda d: d["trigger"].update(entity="invoice"), "trigger.entity", "Input should be"),
    (lambda d: d["trigger"].update(action="merged"), "trigger.action", "Input should be"),
    (lambda d: d["conditions"]["all"][1].update(field="amount"), "conditions.all[1].field",
     "`amount` is not a field of deal"),
    (lambda d: d["conditions"]["all"][1].update(field="title"), "conditions.all[1].op",
     "op `gte` does not apply to string field `title`"),
    (lambda d: d["conditions"]["all"][0].update(op="like"), "conditions.all[0].op", "Input should be"),
    (lambda d: d["trigger"].update(action="created"), "conditions.all[0].op",
     "only applies to `updated` triggers"),
    (lambda d: d["steps"][1]["when"]["all"][0].update(field="nope"), "steps[1].when.all[0].field",
     "not a field of deal"),
    (lambda d: d["steps"].__setitem__(0, {"action": "deal.explode", "params": {}}), "steps[0].action",
     "unknown action type 'deal.explode'"),
    (lambda d: d["steps"][0]["params"].update(due={"in": "soon"}), "steps[0].params.due.in",
     "relative date"),
    (lambda d: d["steps"][0]["params"].update(colour="red"), "steps[0].params.colour", "Extra inputs"),
    (lambda d: d["steps"][0]["params"].pop("subject"), "steps[0].params.subject", "Field required"),
    (lambda d: d["steps"][1]["params"].update(pipeline_id="two"), "steps[1].params.pipeline_id",
     "valid integer"),
    (lambda d: d["steps"][0]["params"].update(subject="Call {{lead.title}}"), "steps[0].params.subject",
     "unknown merge field root lead"),
    (lambda d: d["steps"][2]["delay"].update({"for": "91 days"}), "steps[2].delay.for", "at most 90 days"),
    (lambda d: d["steps"][2]["delay"].update({"for": "1 month"}), "steps[2].delay.for", "not a duration"),
    (lambda d: d["steps"].__setitem__(1, {"action": "deal.update", "params": {}}), "steps[1].params",
     "at least one field"),
    (lambda d: d["steps"][3]["params"].update(target="organization"), "steps[3].params.target",
     "is a organization, not a person"),
    (lambda d: d["steps"].append({"action": "project.delete", "params": {}}), "steps[4].params.target",
     "has no related project"),
    (lambda d: d["steps"].extend([{"action": "activity.create", "params": {"subject": "s"}}] * 8), "steps",
     "at most 10 actions, got 11"),
    (lambda d: d["steps"].append({"action": "deal.update", "delay": {"for": "1 day"}}), "steps",
     "exactly one of `action` or `delay`"),
    (lambda d: d.update(steps=[]), "steps", "at least 1 item"),
    (lambda d: d.update(conditions={"all": [], "any": []}), "conditions", "exactly one of `all` or `any`"),
])
def test_invalid_definitions_are_refused_with_their_path(company_factory: Any, change: Any, path: str,
                                                         message: str) -> None:
    errors = errors_of(company_factory().id, change)
    assert any(e["path"] == path and message in e["message"] for e in errors), errors


def test_every_problem_is_reported_at_once(company_factory: Any) -> None:
    def many(d: dict[str, Any]) -> None:
        d["conditions"]["all"][1]["field"] = "amount"
        d["steps"][2]["delay"]["for"] = "100 days"
        d["steps"][1]["params"]["pipeline_id"] = "two"

    errors = errors_of(company_factory().id, many)
    assert [e["path"] for e in errors] == ["conditions.all[1].field", "steps[2].delay.for",
                                           "steps[1].params.pipeline_id"]


def test_custom_fields_are_known_per_company(company_factory: Any) -> None:
    with_field, without = company_factory(), company_factory()
    with session_scope() as s:
        s.add(CustomFieldDefinition(company_id=with_field.id, entity="deal", key="region", name="Region",
                                    field_type="string"))

    def use_custom(d: dict[str, Any]) -> None:
        d["conditions"]["all"].append({"field": "custom_fields.region", "op": "eq", "value": "EMEA"})

    definition = copy.deepcopy(VALID)
    use_custom(definition)
    with session_scope() as s:
        validate_definition(s, with_field.id, definition)
    errors = errors_of(without.id, use_custom)
    assert errors == [{"path": "conditions.all[2].field",
                       "message": "`custom_fields.region` is not a field of deal"}]
