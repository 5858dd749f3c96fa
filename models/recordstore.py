"""The record service: every write of a CRM record commits its entity event to the outbox in the same
transaction (transactional outbox), and wakes the relay with NOTIFY."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, text
from sqlmodel import Session, select

from models.events import EntityEvent, EventChain, make_event
from models.fields import READ_ONLY_FIELDS
from models.tables import ENTITY_TABLES, Company, CustomFieldDefinition, Deal, EventOutbox, RecordBase, utcnow

OUTBOX_CHANNEL = "automations_outbox"


class RecordInvalid(ValueError):
    """Values that do not fit the record type (unknown field, wrong type, read-only field)."""


class RecordMissing(LookupError):
    pass


class LimitReached(Exception):
    pass


@cache
def _adapter(entity: str, field: str) -> TypeAdapter[Any]:
    annotation: Any = ENTITY_TABLES[entity].model_fields[field].annotation
    return TypeAdapter(annotation)


def coerce_values(session: Session, company_id: int, entity: str, values: dict[str, Any]) -> dict[str, Any]:
    """Check and convert `values` for `entity`; custom fields must be defined by the company."""
    table = ENTITY_TABLES[entity]
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "custom_fields":
            if not isinstance(value, dict):
                raise RecordInvalid("custom_fields must be an object")
            known = set(session.exec(select(CustomFieldDefinition.key).where(
                CustomFieldDefinition.company_id == company_id, CustomFieldDefinition.entity == entity)))
            unknown = sorted(set(value) - known)
            if unknown:
                raise RecordInvalid(f"custom field(s) {', '.join(unknown)} not defined for {entity}")
            out[name] = value
            continue
        if name not in table.model_fields:
            raise RecordInvalid(f"`{name}` is not a field of {entity}")
        if name in READ_ONLY_FIELDS:
            raise RecordInvalid(f"`{name}` cannot be set")
        try:
            out[name] = _adapter(entity, name).validate_python(value)
        except PydanticValidationError as err:
            raise RecordInvalid(f"`{name}`: {err.errors()[0]['msg']} (got {value!r})") from None
    return out


def record_to_dict(record: RecordBase) -> dict[str, Any]:
    return record.model_dump(mode="json")


def get_record(session: Session, company_id: int, entity: str, record_id: int, *, lock: bool = False) -> RecordBase:
    table = ENTITY_TABLES[entity]
    query = select(table).where(table.id == record_id, table.company_id == company_id)
    if lock:
        query = query.with_for_update()
    record = session.exec(query).first()
    if record is None:
        raise RecordMissing(f"{entity} {record_id} does not exist in company {company_id}")
    return record


def publish(session: Session, event: EntityEvent) -> None:
    """Add `event` to the outbox in the caller's transaction; the relay publishes it after commit."""
    session.add(EventOutbox(event_id=event.event_id, company_id=event.company_id,
                            payload=event.model_dump(mode="json")))
    session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))


def _check_open_deal_limit(session: Session, company_id: int) -> None:
    # The company row lock serializes concurrent deal creations, so the limit cannot be overshot.
    company = session.exec(select(Company).where(Company.id == company_id).with_for_update()).one()
    if company.open_deal_limit is None:
        return
    open_deals = session.exec(select(func.count()).select_from(Deal).where(
        Deal.company_id == company_id, Deal.status == "open")).one()
    if open_deals >= company.open_deal_limit:
        raise LimitReached(f"open-deal limit reached: the company has {open_deals} open deals "
                           f"(limit {company.open_deal_limit})")


def create_record(session: Session, company_id: int, entity: str, values: dict[str, Any], *,
                  user_id: int | None, source: str = "app", chain: EventChain | None = None,
                  ) -> tuple[RecordBase, EntityEvent]:
    clean = coerce_values(session, company_id, entity, values)
    if entity == "deal" and clean.get("status", "open") == "open":
        _check_open_deal_limit(session, company_id)
    table = ENTITY_TABLES[entity]
    try:
        record = table.model_validate({**clean, "company_id": company_id})
    except PydanticValidationError as err:
        first = err.errors()[0]
        raise RecordInvalid(f"`{'.'.join(map(str, first['loc']))}`: {first['msg']}") from None
    record.owner_id = record.owner_id or user_id
    session.add(record)
    session.flush()
    assert record.id is not None
    event = make_event(company_id=company_id, entity=entity, action="created", entity_id=record.id,
                       current=record_to_dict(record), previous=None, occurred_at=record.created_at,
                       user_id=user_id, source=source, chain=chain)
    publish(session, event)
    return record, event


def update_record(session: Session, company_id: int, entity: str, record_id: int, values: dict[str, Any], *,
                  user_id: int | None, source: str = "app", chain: EventChain | None = None,
                  ) -> tuple[RecordBase, EntityEvent | None]:
    """Apply `values`; returns the event, or None when nothing actually changed."""
    clean = coerce_values(session, company_id, entity, values)
    record = get_record(session, company_id, entity, record_id, lock=True)
    before = record_to_dict(record)
    if "custom_fields" in clean:
        clean["custom_fields"] = {**record.custom_fields, **clean["custom_fields"]}
    for name, value in clean.items():
        setattr(record, name, value)
    reopened = entity == "deal" and before["status"] != "open" and clean.get("status") == "open"
    if reopened:
        _check_open_deal_limit(session, company_id)
    after = record_to_dict(record)
    changed = {k: before[k] for k in after if after[k] != before[k]}
    if not changed:
        return record, None
    record.updated_at = utcnow()
    session.add(record)
    session.flush()
    event = make_event(company_id=company_id, entity=entity, action="updated", entity_id=record_id,
                       current=record_to_dict(record), previous=changed, occurred_at=record.updated_at,
                       user_id=user_id, source=source, chain=chain)
    publish(session, event)
    return record, event


def delete_record(session: Session, company_id: int, entity: str, record_id: int, *, user_id: int | None,
                  source: str = "app", chain: EventChain | None = None, now: datetime | None = None,
                  ) -> EntityEvent:
    record = get_record(session, company_id, entity, record_id, lock=True)
    last_state = record_to_dict(record)
    session.delete(record)
    session.flush()
    event = make_event(company_id=company_id, entity=entity, action="deleted", entity_id=record_id,
                       current=None, previous=last_state, occurred_at=now or utcnow(),
                       user_id=user_id, source=source, chain=chain)
    publish(session, event)
    return event
