"""The outbox relay: publishes events committed by the record service to intake, in commit order.

It wakes on PostgreSQL NOTIFY and also polls, so nothing waits long if a notification is missed. Intake is
idempotent, so a crash between publishing and marking an event published only re-delivers it.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from sqlalchemy import update
from sqlmodel import col, select
from temporalio.client import Client

from models.db import session_scope
from models.recordstore import OUTBOX_CHANNEL
from models.settings import get_settings
from models.tables import EventOutbox, utcnow
from starter.intake import EventRefused, emit

log = logging.getLogger(__name__)


def _pending(limit: int) -> list[EventOutbox]:
    with session_scope() as session:
        return list(session.exec(select(EventOutbox).where(col(EventOutbox.published_at).is_(None))
                                 .order_by(col(EventOutbox.id)).limit(limit)).all())


def _mark_published(ids: list[int]) -> None:
    with session_scope() as session:
        session.execute(update(EventOutbox).where(col(EventOutbox.id).in_(ids)).values(published_at=utcnow()))


async def publish_pending(client: Client, limit: int = 200) -> int:
    """Publish one batch of unpublished outbox events; returns how many."""
    rows = await asyncio.to_thread(_pending, limit)
    for row in rows:
        try:
            await emit(client, row.payload)
        except EventRefused as err:  # cannot happen for events the record service built; never block the queue
            log.error("outbox event %s refused by intake: %s", row.event_id, err)
    if rows:
        await asyncio.to_thread(_mark_published, [r.id for r in rows if r.id is not None])
    return len(rows)


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


#: PostgreSQL advisory lock held by the one relay that publishes; the others stand by.
RELAY_LOCK = 724002


async def run_relay(client: Client, stop: asyncio.Event) -> None:
    """Publish the outbox until `stop`. Every worker runs a relay, but only the one holding the advisory lock
    publishes (others would only repeat its work); if it dies, its connection and lock go, and another takes over
    within a poll interval."""
    settings = get_settings()
    async with await psycopg.AsyncConnection.connect(_libpq_url(settings.database_url), autocommit=True) as conn:
        await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
        leader = False
        while not stop.is_set():
            if not leader:
                row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK,))).fetchone()
                leader = bool(row and row[0])
            if leader:
                try:
                    while await publish_pending(client):
                        pass
                except Exception:
                    log.exception("outbox relay: publishing failed; retrying")
            async for _ in conn.notifies(timeout=settings.outbox_poll_seconds, stop_after=1):
                pass
