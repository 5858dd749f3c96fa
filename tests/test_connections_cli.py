"""`automations connections add/list/test`: secrets prompted (hidden) and stored encrypted, checked against the
fake providers."""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from typer.testing import CliRunner

from models.db import session_scope
from models.tables import IntegrationConnection, User
from starter.cli import app
from starter.fakes import FakeProviders
from tests.provider_fixtures import FakeSmtp

WIDE = {"COLUMNS": "250"}


def test_add_list_and_test_a_slack_connection(company_factory: Any, fakes: FakeProviders) -> None:
    c = company_factory()
    runner = CliRunner()
    added = runner.invoke(app, ["connections", "add", "slack", "sales-slack", "--company", str(c.id),
                                "--set", f"base_url={fakes.url('slack')}"], input=f"{fakes.slack_token}\n")
    assert added.exit_code == 0, added.output
    assert "saved slack connection 'sales-slack'" in added.output and fakes.slack_token not in added.output
    listed = runner.invoke(app, ["connections", "list", "--company", str(c.id)], env=WIDE)
    assert "sales-slack" in listed.output and fakes.url("slack") in listed.output
    assert fakes.slack_token not in listed.output
    tested = runner.invoke(app, ["connections", "test", "sales-slack", "--company", str(c.id)])
    assert tested.exit_code == 0, tested.output
    assert "ok slack connection 'sales-slack': bot crm-bot in workspace Acme" in tested.output
    assert fakes.received("slack")[0].path == "/slack/api/auth.test"

    runner.invoke(app, ["connections", "add", "slack", "sales-slack", "--company", str(c.id),
                        "--set", f"base_url={fakes.url('slack')}"], input="xoxb-revoked\n")
    failed = runner.invoke(app, ["connections", "test", "sales-slack", "--company", str(c.id)], env=WIDE)
    assert failed.exit_code == 1 and "does not work: Slack refused the request: invalid_auth" in failed.output


def test_a_synced_mailbox_is_added_for_a_user_and_tested(company_factory: Any, smtp: FakeSmtp) -> None:
    c = company_factory()
    result = CliRunner().invoke(app, [
        "connections", "add", "smtp", "ada-mail", "--company", str(c.id), "--set", "host=localhost",
        "--set", f"port={smtp.port}", "--set", f"username={smtp.username}", "--mailbox-of", str(c.admin_id),
        "--address", smtp.username], input=f"{smtp.password}\n")
    assert result.exit_code == 0, result.output
    with session_scope() as s:
        row = s.exec(select(IntegrationConnection).where(IntegrationConnection.company_id == c.id)).one()
        admin = s.get(User, c.admin_id)
        assert admin is not None and admin.mailbox == {"connection_id": row.id, "address": smtp.username}
        assert row.settings["port"] == smtp.port and smtp.password not in row.secret
    tested = CliRunner().invoke(app, ["connections", "test", "ada-mail", "--company", str(c.id)])
    assert tested.exit_code == 0, tested.output
    assert f"connected to localhost:{smtp.port} as {smtp.username}" in tested.output


def test_bad_connections_are_refused_with_the_reason(company_factory: Any) -> None:
    c = company_factory()
    runner = CliRunner()
    unknown = runner.invoke(app, ["connections", "add", "dropbox", "x", "--company", str(c.id)])
    assert unknown.exit_code == 1 and "unknown provider 'dropbox'" in unknown.output
    invalid = runner.invoke(app, ["connections", "add", "smtp", "x", "--company", str(c.id), "--set", "port=abc"],
                            input="secret-password\n", env=WIDE)
    assert invalid.exit_code == 1
    assert "settings.host: Field required" in invalid.output and "settings.port" in invalid.output
    assert "secret-password" not in invalid.output.replace("(hidden): ", "")
    missing = runner.invoke(app, ["connections", "test", "nope", "--company", str(c.id)], env=WIDE)
    assert missing.exit_code == 1 and f"company {c.id} has no connection called 'nope'" in missing.output
