"""Record actions (S5): create, update and delete for each of the six entity types.

Each runs inside the step's transaction, so its write, its outbox event and its step result commit together.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from activities.context import ActionContext, default_target
from activities.dates import DueSpec, resolve_due
from activities.registry import action
from models.fields import READ_ONLY_FIELDS, relations
from models.recordstore import create_record, delete_record, record_to_dict, update_record
from models.tables import ENTITY_TABLES

#: Fields a create must set (the rest default).
REQUIRED_ON_CREATE = {"deal": "title", "person": "name", "organization": "name", "activity": "subject",
                      "lead": "title", "project": "title"}


class TargetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: "trigger", or a relation of the trigger record ("person", "deal", ...). Default: the trigger record
    #: when the types match, else the trigger's related record of this type.
    target: str | None = None
    #: An explicit record id (usually a merge field) instead of `target`.
    record_id: int | None = None


def _field_definitions(entity: str, *, create: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, info in ENTITY_TABLES[entity].model_fields.items():
        if name in READ_ONLY_FIELDS:
            continue
        if entity == "activity" and name == "due_date" and create:
            continue  # set through `due`, relative to the trigger
        annotation: Any = info.annotation
        required = create and REQUIRED_ON_CREATE[entity] == name
        fields[name] = (annotation, ...) if required else (annotation | None, None)
    fields["custom_fields"] = (dict[str, Any] | None, None)
    return fields


def _has_values(self: BaseModel) -> BaseModel:
    if not self.model_dump(exclude_none=True, exclude={"target", "record_id"}):
        raise ValueError("an update needs at least one field to set")
    return self


def _check_target(entity: str) -> Any:
    def check(params: Any, trigger_entity: str) -> list[dict[str, str]]:
        if params.record_id is not None:
            return []
        target = params.target or default_target(entity, trigger_entity)
        if target is None:
            return [{"path": "target", "message": f"a {trigger_entity} trigger has no related {entity}: "
                                                  "set `record_id`"}]
        if target != "trigger" and target not in relations(trigger_entity):
            options = ", ".join(["trigger", *relations(trigger_entity)])
            return [{"path": "target", "message": f"{target!r} is not a relation of {trigger_entity} "
                                                  f"(choose from: {options})"}]
        if target == "trigger" and entity != trigger_entity:
            return [{"path": "target", "message": f"the trigger record is a {trigger_entity}, not a {entity}"}]
        if target != "trigger" and relations(trigger_entity)[target] != entity:
            return [{"path": "target", "message": f"{target!r} is a {relations(trigger_entity)[target]}, "
                                                  f"not a {entity}"}]
        return []

    return check


def _auto_link(ctx: ActionContext, entity: str, values: dict[str, Any]) -> None:
    """A record created from a trigger is linked to it (an activity created on a deal belongs to that deal)."""
    link = f"{ctx.event.entity}_id"
    if ctx.event.action != "deleted" and link in ENTITY_TABLES[entity].model_fields and link not in values:
        values[link] = ctx.event.entity_id


def _register(entity: str) -> None:
    create_fields = _field_definitions(entity, create=True)
    if entity == "activity":
        create_fields["due"] = (DueSpec | None, Field(None, description=(
            "{in: '1 day'}, {next: friday}, or a date; default: the trigger date (company time zone)")))
    create_params = create_model(f"{entity.title()}CreateParams", __config__=ConfigDict(extra="forbid"),
                                 **create_fields)
    update_params = create_model(f"{entity.title()}UpdateParams", __base__=TargetParams,
                                 __validators__={"has_values": cast(Any, model_validator(mode="after")(_has_values))},
                                 **_field_definitions(entity, create=False))

    def create(ctx: ActionContext, params: Any) -> dict[str, Any]:
        values = params.model_dump(exclude_none=True, exclude={"due"})
        if entity == "activity":
            values["due_date"] = resolve_due(params.due, ctx.event.occurred_at, ctx.company.timezone)
        _auto_link(ctx, entity, values)
        values.setdefault("owner_id", ctx.owner_id)
        record, event = create_record(ctx.session, ctx.company.id or 0, entity, values, user_id=ctx.owner_id,
                                      source="automation", chain=ctx.chain)
        return {"entity": entity, "id": record.id, "record": record_to_dict(record), "event_id": event.event_id}

    def update(ctx: ActionContext, params: Any) -> dict[str, Any]:
        record_id = ctx.target_id(entity, params.target, params.record_id)
        values = params.model_dump(exclude_none=True, exclude={"target", "record_id"})
        _record, event = update_record(ctx.session, ctx.company.id or 0, entity, record_id, values,
                                      user_id=ctx.owner_id, source="automation", chain=ctx.chain)
        return {"entity": entity, "id": record_id, "changed": sorted(event.previous or {}) if event else [],
                "event_id": event.event_id if event else None}

    def delete(ctx: ActionContext, params: Any) -> dict[str, Any]:
        record_id = ctx.target_id(entity, params.target, params.record_id)
        event = delete_record(ctx.session, ctx.company.id or 0, entity, record_id, user_id=ctx.owner_id,
                              source="automation", chain=ctx.chain)
        return {"entity": entity, "id": record_id, "event_id": event.event_id}

    action(f"{entity}.create", create_params, description=f"Create a {entity}.")(create)
    action(f"{entity}.update", update_params, check=_check_target(entity),
           description=f"Update the trigger {entity}, or the trigger's related {entity}.")(update)
    action(f"{entity}.delete", TargetParams, check=_check_target(entity),
           description=f"Delete the trigger {entity}, or the trigger's related {entity}.")(delete)


for _entity in ENTITY_TABLES:
    _register(_entity)
