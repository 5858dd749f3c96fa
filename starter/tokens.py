"""API tokens: issue one for a user (the token is shown once), resolve a presented token to its user, revoke."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import update
from sqlmodel import Session, col, select

from models.tables import ApiToken, User, utcnow

TOKEN_PREFIX = "crm_"


def _digest(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is safe (nothing to brute-force) and keeps lookups indexed.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user_id: int, name: str) -> str:
    """A new token acting as `user_id` in that user's company; only its hash is stored."""
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"user {user_id} does not exist")
    assert user.id is not None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(company_id=user.company_id, user_id=user.id, name=name, token_hash=_digest(token),
                         prefix=token[:len(TOKEN_PREFIX) + 6]))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The user a token acts as; None for an unknown or revoked token."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == _digest(token),
                                              col(ApiToken.revoked_at).is_(None))).first()
    if row is None:
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.company_id == row.company_id else None


def revoke_tokens(session: Session, user_id: int, name: str) -> int:
    """Revoke the user's live tokens named `name`; returns how many."""
    result = session.execute(update(ApiToken).where(
        col(ApiToken.user_id) == user_id, col(ApiToken.name) == name, col(ApiToken.revoked_at).is_(None),
    ).values(revoked_at=utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
