"""Automation definitions (S3): the schema, and the checks that refuse a bad definition with its path."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from models.events import EntityType, TriggerAction
from models.fields import ACTIVE_OPS, ALL_OPS, OPS_BY_TYPE, UNARY_OPS, entity_fields

MAX_ACTIONS = 10

_DURATION = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week)s?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """'2 days', '1 week', '90 minutes' -> timedelta. Months are refused: their length varies."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like '2 days' (units: seconds, minutes, hours, days, weeks)")
    amount, unit = int(match.group(1)), match.group(2).lower()
    return timedelta(**{f"{unit}s": amount})


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1)
    op: Literal[ALL_OPS]  # type: ignore[valid-type]
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op `{self.op}` needs a list value")
        if self.op not in UNARY_OPS and self.value is None and self.op not in ("eq", "ne"):
            raise ValueError(f"op `{self.op}` needs a value")
        return self


def _condition_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "group" if ("all" in value or "any" in value) else "condition"
    return "group" if isinstance(value, ConditionGroup) else "condition"


class ConditionGroup(BaseModel):
    """Exactly one of `all` (every child holds) or `any` (at least one holds)."""

    model_config = ConfigDict(extra="forbid")
    all: list[ConditionNode] | None = None
    any: list[ConditionNode] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ConditionGroup:
        if (self.all is None) == (self.any is None):
            raise ValueError("a condition group has exactly one of `all` or `any`")
        if not self.children:
            raise ValueError("a condition group needs at least one condition")
        return self

    @property
    def kind(self) -> str:
        return "all" if self.all is not None else "any"

    @property
    def children(self) -> list[Condition | ConditionGroup]:
        return (self.all if self.all is not None else self.any) or []


ConditionNode = Annotated[
    Annotated[Condition, Tag("condition")] | Annotated[ConditionGroup, Tag("group")],
    Discriminator(_condition_kind),
]
ConditionGroup.model_rebuild()


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity: EntityType
    action: TriggerAction


class Delay(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    duration: str = Field(alias="for")

    @field_validator("duration")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def timedelta(self) -> timedelta:
        return parse_duration(self.duration)


class DelayStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay: Delay
    summary: str | None = None


class ActionStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    when: ConditionGroup | None = None
    summary: str | None = None


def _step_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "delay" if "delay" in value else "action"
    return "delay" if isinstance(value, DelayStep) else "action"


Step = Annotated[
    Annotated[ActionStep, Tag("action")] | Annotated[DelayStep, Tag("delay")],
    Discriminator(_step_kind),
]


class AutomationDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=200)
    trigger: Trigger
    run_for: Literal["anyone"] | list[int] = "anyone"
    conditions: ConditionGroup | None = None
    steps: list[Step] = Field(min_length=1)
    active: bool = True

    @field_validator("steps", mode="before")
    @classmethod
    def _steps_are_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, step in enumerate(value):
                if isinstance(step, dict) and ("delay" in step) == ("action" in step):
                    raise ValueError(f"steps[{index}] must have exactly one of `action` or `delay`")
        return value


class DefinitionError(ValueError):
    """A definition refused at save time; `errors` holds one {path, message} per problem."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))


_TAGS = ("action", "delay", "condition", "group")
#: Tags of tagged unions inside action params; never field names.
_PARAM_TAGS = ("relative", "weekday", "on_date")


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('steps', 2, 'action', 'params', 'due') -> 'steps[2].params.due'.

    A union member's tag sits right after a list index in pydantic's error locations; it is dropped.
    """
    path = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not (isinstance(previous, int) and part in _TAGS) and part not in _PARAM_TAGS:
            path += f".{part}" if path else part
        previous = part
    return path or "(root)"


def pydantic_errors(details: list[Any], prefix: str = "") -> list[dict[str, str]]:
    """pydantic's `err.errors()` as {path, message} dicts, paths under `prefix`."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in details:
        loc = format_loc(tuple(e["loc"]))
        path = f"{prefix}.{loc}" if prefix and loc != "(root)" else (prefix or loc)
        message = e["msg"].removeprefix("Value error, ")
        if (path, message) not in seen:
            seen.add((path, message))
            out.append({"path": path, "message": message})
    return out


def parse_definition(raw: dict[str, Any]) -> AutomationDefinition:
    """Structural validation only (shapes, lengths, ops); see `check_conditions` for fields."""
    try:
        return AutomationDefinition.model_validate(raw)
    except ValidationError as err:
        raise DefinitionError(pydantic_errors(err.errors())) from None


def check_conditions(
    group: ConditionGroup | None,
    path: str,
    entity: str,
    action: str,
    custom_fields: dict[str, str] | None = None,
) -> list[dict[str, str]]:
    """Fields exist on the entity, ops fit the field type, active ops only on `updated` triggers."""
    if group is None:
        return []
    fields = entity_fields(entity, custom_fields)
    errors: list[dict[str, str]] = []
    for index, child in enumerate(group.children):
        child_path = f"{path}.{group.kind}[{index}]"
        if isinstance(child, ConditionGroup):
            errors += check_conditions(child, child_path, entity, action, custom_fields)
            continue
        field_type = fields.get(child.field)
        if field_type is None:
            errors.append({"path": f"{child_path}.field",
                           "message": f"`{child.field}` is not a field of {entity}"})
            continue
        if child.op not in OPS_BY_TYPE[field_type]:
            errors.append({"path": f"{child_path}.op",
                           "message": f"op `{child.op}` does not apply to {field_type} field `{child.field}`"})
        if child.op in ACTIVE_OPS and action != "updated":
            errors.append({"path": f"{child_path}.op",
                           "message": f"op `{child.op}` only applies to `updated` triggers, not `{action}`"})
    return errors


def check_definition(definition: AutomationDefinition, max_delay: timedelta,
                     custom_fields: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Checks that need the field catalog; action params are checked by the action registry."""
    entity, action = definition.trigger.entity, definition.trigger.action
    errors = check_conditions(definition.conditions, "conditions", entity, action, custom_fields)
    actions = 0
    for index, step in enumerate(definition.steps):
        if isinstance(step, ActionStep):
            actions += 1
            errors += check_conditions(step.when, f"steps[{index}].when", entity, action, custom_fields)
        elif step.delay.timedelta > max_delay:
            errors.append({"path": f"steps[{index}].delay.for",
                           "message": f"a delay is at most {max_delay.days} days"})
    if actions > MAX_ACTIONS:
        errors.append({"path": "steps", "message": f"at most {MAX_ACTIONS} actions, got {actions}"})
    return errors
