"""Property-based tests of the whole API from its OpenAPI schema (schemathesis): whatever a client sends, the
API never answers with a 5xx, and its answers match the schema it documents."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from models.db import session_scope
from models.tables import Company, User
from starter.api.main import app
from starter.tokens import issue_token


def condition_trees_one_level_deep(openapi: dict[str, Any]) -> dict[str, Any]:
    """The API's schema with condition groups nested at most one level. The real schema is recursive (groups of
    groups, without end), and schemathesis's fuzzing of self-referencing schemas can recurse past Python's stack;
    deeper trees are covered by the definition tests."""
    raw = json.loads(json.dumps(openapi))
    schemas = raw["components"]["schemas"]
    condition = '{"$ref": "#/components/schemas/Condition"}'
    for name in [n for n in schemas if n.startswith("ConditionGroup") and not n.endswith("-Output")]:
        text = json.dumps(schemas[name])
        node = f'{{"oneOf": [{condition}, {{"$ref": "#/components/schemas/{name}"}}]}}'
        assert node in text, f"{name} no longer refers to itself as expected: update this test"
        schemas[f"{name}-Leaves"] = json.loads(text.replace(node, condition))
        schemas[name] = json.loads(text.replace(f'"#/components/schemas/{name}"',
                                                f'"#/components/schemas/{name}-Leaves"'))
    return raw


schema = schemathesis.openapi.from_dict(condition_trees_one_level_deep(app.openapi()))
schema.app = app  # requests go to the app in process


@pytest.fixture(scope="module")
def token() -> str:
    """A global admin of a company of its own: the generated requests may create, change and delete anything."""
    with session_scope() as s:
        company = Company(name="Fuzzed", plan="professional")
        s.add(company)
        s.flush()
        assert company.id is not None
        admin = User(company_id=company.id, name="Fuzz", email="fuzz@example.com", is_global_admin=True)
        s.add(admin)
        s.flush()
        assert admin.id is not None
        return issue_token(s, admin.id, "schemathesis")


@schema.parametrize()
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_the_api_never_answers_5xx(case: schemathesis.Case, token: str) -> None:
    if case.path == "/webhooks/pipedrive":
        authorization = "Basic " + base64.b64encode(f"pipedrive:{token}".encode()).decode()
    else:
        authorization = f"Bearer {token}"
    case.call_and_validate(headers={"Authorization": authorization},
                           checks=[not_a_server_error, response_schema_conformance])
