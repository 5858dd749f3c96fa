"""Request dependencies: the database session (committed before the response is sent) and the acting user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from sqlmodel import Session

from models.db import session_scope
from models.tables import User
from starter.tokens import user_for_token


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


# scope="function": the transaction commits before the response goes out, so a 2xx means it is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

bearer = HTTPBearer(auto_error=False, description="An API token (`automations token --user ID` prints one).")
basic = HTTPBasic(auto_error=False, description="Any user name; the password is an API token.")


def _user(session: Session, token: str | None, scheme: str) -> User:
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing credentials: send an API token ({scheme})",
                            headers={"WWW-Authenticate": scheme})
    user = user_for_token(session, token)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked API token",
                            headers={"WWW-Authenticate": scheme})
    return user


def current_user(session: SessionDep,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
    return _user(session, credentials.credentials if credentials else None, "Bearer")


def webhook_user(session: SessionDep, credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> User:
    return _user(session, credentials.password if credentials else None, "Basic")


def acting_as(user_id: int) -> Callable[..., User]:
    """Stands in for `current_user` when the CLI runs the API in process for a user of the database."""

    def acting_user(session: SessionDep) -> User:
        user = session.get(User, user_id)
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"user {user_id} does not exist")
        return user

    return acting_user


CurrentUser = Annotated[User, Depends(current_user)]
WebhookUser = Annotated[User, Depends(webhook_user)]
#: Ids in paths are PostgreSQL integers: a larger one is refused (422) before it reaches the database.
AutomationId = Annotated[int, Path(ge=1, le=2_147_483_647, description="An automation of your company.")]
