"""Who you are, which action types exist (with their parameter schemas), and whether the service is up."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from activities.registry import discover
from models.api import ActionTypeInfo, Me
from starter.api.deps import CurrentUser, SessionDep
from starter.automations import can_manage

router = APIRouter(tags=["info"])


@router.get("/me")
def me(user: CurrentUser) -> Me:
    assert user.id is not None
    return Me(user_id=user.id, name=user.name, company_id=user.company_id,
              can_manage_automations=can_manage(user))


@router.get("/action-types")
def action_types(user: CurrentUser) -> list[ActionTypeInfo]:
    """Every action a step may use, with the JSON Schema of its `params`."""
    return [ActionTypeInfo(name=a.name, description=a.description, external=a.external, params_schema=a.schema())
            for a in sorted(discover().values(), key=lambda a: a.name)]


@router.get("/health")
def health(session: SessionDep) -> dict[str, str]:
    """Up, and the database answers (no token needed)."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
