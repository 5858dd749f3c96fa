"""The field catalog: which fields each entity type has and of what type, built-in and custom."""

from __future__ import annotations

import types
import typing
from datetime import date, datetime
from typing import Any, Literal, get_args, get_origin

from models.tables import ENTITY_TABLES

FieldType = Literal["string", "number", "integer", "boolean", "date", "datetime", "object"]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)

ENTITY_TYPES: tuple[str, ...] = tuple(ENTITY_TABLES)
TRIGGER_ACTIONS: tuple[str, ...] = ("created", "updated", "deleted")

PASSIVE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "not_contains", "in", "not_in",
               "is_empty", "is_not_empty")
ACTIVE_OPS = ("changed", "changed_to", "changed_from")
ALL_OPS = PASSIVE_OPS + ACTIVE_OPS
#: Ops that take no `value`.
UNARY_OPS = ("is_empty", "is_not_empty", "changed")

_ORDERED = ("number", "integer", "date", "datetime")
OPS_BY_TYPE: dict[str, set[str]] = {
    t: {"eq", "ne", "in", "not_in", "is_empty", "is_not_empty", *ACTIVE_OPS}
    | ({"gt", "gte", "lt", "lte"} if t in _ORDERED else set())
    | ({"contains", "not_contains"} if t == "string" else set())
    for t in FIELD_TYPES
}
OPS_BY_TYPE["object"] = {"is_empty", "is_not_empty", "changed"}

#: Fields an action may never set: identity, tenancy and bookkeeping.
READ_ONLY_FIELDS = {"id", "company_id", "created_at", "updated_at", "custom_fields"}


def _python_to_field_type(annotation: Any) -> FieldType:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
        origin = get_origin(annotation)
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number"
    if annotation is datetime:
        return "datetime"
    if annotation is date:
        return "date"
    if annotation is str:
        return "string"
    return "object"


def builtin_fields(entity: str) -> dict[str, FieldType]:
    table = ENTITY_TABLES[entity]
    return {name: _python_to_field_type(info.annotation) for name, info in table.model_fields.items()}


def entity_fields(entity: str, custom: dict[str, str] | None = None) -> dict[str, FieldType]:
    """All condition-usable fields of `entity`; custom fields appear as `custom_fields.<key>`."""
    fields = builtin_fields(entity)
    for key, field_type in (custom or {}).items():
        fields[f"custom_fields.{key}"] = typing.cast(FieldType, field_type)
    return fields


def relations(entity: str) -> dict[str, str]:
    """Related records reachable from `entity` through a foreign key: relation name -> entity type."""
    return {
        name[: -len("_id")]: name[: -len("_id")]
        for name in builtin_fields(entity)
        if name.endswith("_id") and name[: -len("_id")] in ENTITY_TABLES
    }
