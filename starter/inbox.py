"""Durable intake for events arriving over HTTP: one short transaction into the outbox (the record service's queue),
from which the relay hands them to intake; senders get their answer in milliseconds, whatever Temporal is doing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from models.events import EntityEvent
from models.recordstore import OUTBOX_CHANNEL
from models.tables import EventOutbox, ReceivedEvent
from starter.automations import PermissionDenied

#: Events per request: a batch is accepted (or refused) as a whole, well within a sender's timeout.
MAX_BATCH = 500


class EventConflict(ValueError):
    """An event id already received with a different payload."""


@dataclass(frozen=True)
class Accepted:
    event_id: str
    duplicate: bool


def accept_events(session: Session, company_id: int, events: list[EntityEvent]) -> list[Accepted]:
    """Commit `events` (all of `company_id`) to durable intake, in the caller's transaction.

    A redelivered event is reported as a duplicate; an event id reused with a different payload is refused."""
    for event in events:
        if event.company_id != company_id:
            raise PermissionDenied(f"event {event.event_id} is for company {event.company_id}; this token acts "
                                   f"for company {company_id}")
    accepted = []
    for event in events:
        payload = event.model_dump(mode="json")
        received = session.get(ReceivedEvent, event.event_id)
        if received is not None and received.payload_hash != event.payload_hash():
            raise EventConflict(f"event {event.event_id} was already received with a different payload")
        inserted = session.execute(insert(EventOutbox).values(
            event_id=event.event_id, company_id=event.company_id, payload=payload,
        ).on_conflict_do_nothing().returning(col(EventOutbox.id))).first()
        if inserted is None:
            existing = session.exec(select(EventOutbox).where(EventOutbox.event_id == event.event_id)).one()
            if existing.payload != payload:
                raise EventConflict(f"event {event.event_id} was already received with a different payload")
        accepted.append(Accepted(event.event_id, duplicate=inserted is None or received is not None))
    session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
    return accepted
