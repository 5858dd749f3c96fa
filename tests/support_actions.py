"""Action types used only by tests, registered like any other (the worker subprocess in the integration
tests imports them through ACTION_MODULES)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event
from sqlmodel import Session
from temporalio import activity

from activities.context import ActionContext
from activities.errors import TransientError
from activities.registry import action
from models.recordstore import create_record


class CreateDealParams(BaseModel):
    title: str


def _lose_connection(session: Session) -> None:
    raise ConnectionResetError("connection lost right after commit")


@action("test.create_deal_then_lose_connection", CreateDealParams)
def create_deal_then_lose_connection(ctx: ActionContext, params: CreateDealParams) -> dict[str, Any]:
    """Creates a deal; on the first attempt the connection 'drops' just after the commit succeeded."""
    record, _ = create_record(ctx.session, ctx.event.company_id, "deal", {"title": params.title},
                              user_id=ctx.owner_id, source="automation", chain=ctx.chain)
    if activity.info().attempt == 1:
        event.listen(ctx.session, "after_commit", _lose_connection, once=True)
    return {"id": record.id}


class SlowParams(BaseModel):
    subject: str
    seconds: float


@action("test.slow_activity", SlowParams)
def slow_activity(ctx: ActionContext, params: SlowParams) -> dict[str, Any]:
    """Creates an activity, then takes `seconds` before committing (a window to kill the worker in)."""
    record, _ = create_record(ctx.session, ctx.event.company_id, "activity", {"subject": params.subject},
                              user_id=ctx.owner_id, source="automation", chain=ctx.chain)
    time.sleep(params.seconds)
    return {"id": record.id}


class EchoParams(BaseModel):
    message: str
    #: Fail with a transient error (Retry-After 30 s) on this many first attempts.
    busy_attempts: int = 0


@action("test.external_echo", EchoParams, external=True, max_per_second=50)
def external_echo(ctx: ActionContext, params: EchoParams) -> dict[str, Any]:
    """Stands for an outside service: answers with a provider id, or 'rate limited' a few times first."""
    attempt = activity.info().attempt
    if attempt <= params.busy_attempts:
        raise TransientError("provider says: rate limited", retry_after=30, type="RateLimited")
    return {"provider_id": f"msg-{ctx.run_id}-{ctx.step_index}", "echo": params.message,
            "task_queue": activity.info().task_queue, "attempt": attempt}
