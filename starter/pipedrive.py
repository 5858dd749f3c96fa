"""Pipedrive webhooks, v1 and v2, read as entity events (S2), so the CRM's own webhooks feed intake."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from models.fields import ENTITY_TYPES, READ_ONLY_FIELDS
from models.tables import ENTITY_TABLES
from starter.intake import EventRefused

ACTIONS = {"create": "created", "added": "created", "change": "updated", "updated": "updated",
           "merged": "updated", "delete": "deleted", "deleted": "deleted"}
#: `change_source`: the web app or the API. Anything else (a marketplace integration) counts as the API.
SOURCES = {"app": "app", "api": "api", "import": "import"}
#: Pipedrive's names for our fields.
RENAMES = {"org_id": "organization_id", "add_time": "created_at", "update_time": "updated_at",
           "emails": "email", "phones": "phone"}
#: v1 puts custom fields beside the built-in ones, keyed by a 40-character hash.
_CUSTOM_KEY = re.compile(r"^[0-9a-f]{40}$")
_MAX_ID = 2_147_483_647
#: Event ids derived for v1 payloads (which carry none): the same change, retried, gets the same id.
_NAMESPACE = uuid.UUID("5b0c3e1e-3f1a-4c55-9d0c-6f1f3c0e7a21")


class WebhookIgnored(Exception):
    """A well-formed webhook about something no automation triggers on (notes, products, pipelines, …)."""


def _record_id(value: Any) -> int | None:
    if isinstance(value, dict):  # v1 API style: {"value": 42, "name": "…"}
        value = value.get("value")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 < value <= _MAX_ID else None


def _primary(value: Any) -> Any:
    """A person's emails/phones (a list of {value, primary}) as the one our record holds: the primary one."""
    if not isinstance(value, list):
        return value
    entries = [e for e in value if isinstance(e, dict) and e.get("value")]
    primary = next((e for e in entries if e.get("primary")), entries[0] if entries else None)
    return primary["value"] if primary else None


def _timestamp_field(value: Any) -> Any:
    """'2025-02-17 21:22:41' (v1, UTC) and '2025-04-15T15:35:54Z' (v2) as ISO 8601 with a zone."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def _custom_value(value: Any) -> Any:
    """v2 custom field values are typed objects: {type: double, value: 5}, {type: enum, id: 3}, …"""
    if not isinstance(value, dict):
        return value
    if "value" in value:
        return value["value"]
    if "values" in value and isinstance(value["values"], list):
        return [v.get("id") if isinstance(v, dict) else v for v in value["values"]]
    return value.get("id", value)


def _field(name: str, value: Any) -> Any:
    if name.endswith("_id"):
        return _record_id(value)
    if name in ("email", "phone"):
        return _primary(value)
    if name in ("created_at", "updated_at"):
        return _timestamp_field(value)
    if isinstance(value, dict):  # lead value {amount, currency}, address {value, …}
        return value.get("amount", value.get("value"))
    return value


def record(entity: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A Pipedrive record as our record type has it: our field names, plain values, custom fields by key.
    Fields our records do not have are left out."""
    fields = set(ENTITY_TABLES[entity].model_fields) - (READ_ONLY_FIELDS - {"created_at", "updated_at"})
    out: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "custom_fields" and isinstance(value, dict):
            custom.update({k: _custom_value(v) for k, v in value.items()})
            continue
        if _CUSTOM_KEY.match(key):
            custom[key] = _custom_value(value)
            continue
        # v1 names the owner `user_id` (v2 `owner_id`).
        name = "owner_id" if key == "user_id" and "owner_id" not in raw else RENAMES.get(key, key)
        if name in fields:
            out[name] = _field(name, value)
    if custom:
        out["custom_fields"] = custom
    return out


def _occurred_at(meta: dict[str, Any]) -> datetime | None:
    """v1: epoch seconds (and microseconds); v2: ISO 8601, or epoch seconds. None when it is neither."""
    stamp = meta.get("timestamp")
    micro = meta.get("timestamp_micro")
    try:
        if isinstance(micro, int) and not isinstance(micro, bool):
            return datetime.fromtimestamp(micro / 1_000_000, UTC)
        if isinstance(stamp, str) and stamp.isdigit():
            stamp = int(stamp)
        if isinstance(stamp, int | float) and not isinstance(stamp, bool):
            return datetime.fromtimestamp(stamp, UTC)
        if isinstance(stamp, str):
            parsed = datetime.fromisoformat(stamp)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):  # not a date, or one out of range
        return None
    return None


def _event_id(meta: dict[str, Any], key: list[Any]) -> str:
    try:
        return str(uuid.UUID(str(meta.get("id"))))
    except ValueError:
        return str(uuid.uuid5(_NAMESPACE, json.dumps(key, default=str)))


def to_event(payload: Any, company_id: int) -> dict[str, Any]:
    """The S2 event a webhook payload stands for, in `company_id` (the authenticated company: Pipedrive's own
    company numbering is not ours). Raises EventRefused naming the payload's paths, or WebhookIgnored.

    v2: `meta.action` create|change|delete, `meta.entity`, `data` (the record now), `previous` (the changed
    fields' old values; the last state on delete). v1: `meta.action` added|updated|deleted|merged, `meta.object`,
    `current` and `previous` (whole records). Ids come as strings or integers. A merge arrives as a delete of the
    record merged away and a change of the record kept (v1 may send `merged` for the kept one: a change)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("meta"), dict):
        raise EventRefused([{"path": "meta", "message": "a Pipedrive webhook is an object with a `meta` object"}])
    meta: dict[str, Any] = payload["meta"]
    v2 = "entity" in meta or str(meta.get("version", "")).startswith("2")
    object_key, data_key = ("entity", "data") if v2 else ("object", "current")
    errors = []
    action_raw, entity = meta.get("action"), meta.get(object_key)
    if action_raw not in ACTIONS:
        errors.append({"path": "meta.action", "message": f"{action_raw!r} is not a webhook action (v2: create, "
                                                         "change, delete; v1: added, updated, deleted, merged)"})
    if not isinstance(entity, str) or not entity:
        errors.append({"path": f"meta.{object_key}", "message": "the record type is missing"})
    for key in (data_key, "previous"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            errors.append({"path": key, "message": "must be an object or null"})
    if errors:
        raise EventRefused(errors)
    assert isinstance(entity, str)
    if entity not in ENTITY_TYPES:
        raise WebhookIgnored(f"{entity} events trigger no automation (record types: {', '.join(ENTITY_TYPES)})")
    action = ACTIONS[str(action_raw)]
    current_raw: dict[str, Any] | None = payload.get(data_key)
    previous_raw: dict[str, Any] | None = payload.get("previous")
    state = current_raw or previous_raw or {}
    raw_id = meta.get("entity_id") if v2 else meta.get("id")
    entity_id = _record_id(raw_id if raw_id is not None else state.get("id"))
    if entity_id is None:
        errors.append({"path": "meta.entity_id" if v2 else "meta.id",
                       "message": f"{raw_id!r} is not a record id here (a positive integer, as a number or string)"})
    occurred_at = _occurred_at(meta)
    if occurred_at is None:
        errors.append({"path": "meta.timestamp", "message": "a webhook's time is an epoch or an ISO 8601 timestamp"})
    if action == "updated" and current_raw is None:
        errors.append({"path": data_key, "message": "a change webhook carries the record as it is now"})
    user_raw = meta.get("user_id")
    user_id = _record_id(user_raw)
    if user_raw not in (None, "") and user_id is None:
        errors.append({"path": "meta.user_id", "message": f"{user_raw!r} is not a user id (a positive integer)"})
    if errors:
        raise EventRefused(errors)
    assert entity_id is not None and occurred_at is not None

    current = {**record(entity, current_raw), "id": entity_id} if current_raw is not None else None
    previous = record(entity, previous_raw) if previous_raw is not None else None
    if action == "created":
        current, previous = current or {"id": entity_id}, None
    elif action == "updated":
        assert current is not None
        # S2's `previous` holds the changed fields only (v1 sends the whole record before the change).
        previous = {k: v for k, v in (previous or {}).items() if k != "id" and current.get(k) != v}
    else:
        previous, current = {**(previous or current or {}), "id": entity_id}, None
    identity = [company_id, entity, entity_id, action_raw, meta.get("timestamp_micro") or meta.get("timestamp")]
    return {"event_id": _event_id(meta, identity), "company_id": company_id, "entity": entity, "action": action,
            "entity_id": entity_id, "user_id": user_id, "occurred_at": occurred_at.isoformat(),
            "source": SOURCES.get(str(meta.get("change_source") or "app"), "api"),
            "current": current, "previous": previous}

