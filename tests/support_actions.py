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
