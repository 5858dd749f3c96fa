"""API fixtures: the app under a test client, and companies whose users hold API tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.db import session_scope
from starter.tokens import issue_token


@dataclass(frozen=True)
class Tenant:
    """A company with an admin and a regular user, each with an API token (as request headers)."""

    id: int
    admin_id: int
    rep_id: int
    admin: dict[str, str]
    rep: dict[str, str]
    admin_token: str


@pytest.fixture(scope="session")
def api() -> Iterator[TestClient]:
    from starter.api.main import app

    with TestClient(app) as client:
        yield client


@pytest.fixture
def tenant(company_factory: Callable[..., Any]) -> Callable[..., Tenant]:
    def make(**overrides: Any) -> Tenant:
        c = company_factory(**overrides)
        with session_scope() as s:
            admin, rep = issue_token(s, c.admin_id, "test"), issue_token(s, c.rep_id, "test")
        return Tenant(id=c.id, admin_id=c.admin_id, rep_id=c.rep_id, admin={"Authorization": f"Bearer {admin}"},
                      rep={"Authorization": f"Bearer {rep}"}, admin_token=admin)

    return make
