"""The CLI's API commands: in process (`--user`, straight on the database) and against a served API (`--api`,
`--token`), with the same answers; tokens; batch emits with a progress bar."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from sqlmodel import func, select
from typer.testing import CliRunner

from models.db import session_scope
from models.tables import EventOutbox
from starter.api.main import app as api_app
from starter.cli import app
from tests.api.conftest import Tenant
from tests.helpers import event

DEFINITION: dict[str, Any] = {
    "name": "Welcome", "trigger": {"entity": "person", "action": "created"},
    "steps": [{"action": "activity.create", "params": {"subject": "Intro call with {{person.name}}"}}],
}
runner = CliRunner()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def served_api() -> Iterator[str]:
    """The API served over HTTP by uvicorn, on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api_app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_manage_automations_in_process(tenant: Callable[..., Tenant], tmp_path: Path) -> None:
    t = tenant()
    as_admin = ["--user", str(t.admin_id)]
    file = tmp_path / "welcome.yaml"
    file.write_text(yaml.safe_dump([DEFINITION, {**DEFINITION, "name": "Second"}]))
    result = cli("apply", str(file), *as_admin)
    assert result.exit_code == 0, result.output
    assert "created automation" in result.output and "'Second' (version 1)" in result.output
    listed = cli("list", *as_admin)
    assert "Welcome" in listed.output and "person created" in listed.output and "active" in listed.output
    automation = _id_of(t, "Welcome")
    assert cli("deactivate", str(automation), *as_admin).output.strip().endswith("is inactive")
    shown = cli("show", str(automation), *as_admin)
    assert "inactive" in shown.output and "Intro call with {{person.name}}" in shown.output
    assert cli("activate", str(automation), *as_admin).output.strip().endswith("is active")

    refused = cli("deactivate", str(automation), "--user", str(t.rep_id))
    assert refused.exit_code == 1 and "neither a global admin" in refused.output
    other = tenant()
    assert cli("show", str(automation), "--user", str(other.admin_id)).exit_code == 1  # 404 elsewhere

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([DEFINITION, {**DEFINITION, "name": "x" * 121},
                               {**DEFINITION, "steps": [{"action": "deal.explode"}]}]))
    invalid = cli("validate", str(bad), *as_admin)
    assert invalid.exit_code == 1
    assert "item 1 name: String should have at most 120 characters" in invalid.output
    assert "item 2 steps[0].action: unknown action type 'deal.explode'" in invalid.output
    assert cli("apply", str(bad), *as_admin).exit_code == 1  # validated first: nothing applied
    assert cli("validate", str(file), *as_admin).output.strip() == "2 valid"

    preview = tmp_path / "event.json"
    preview.write_text(json.dumps({"entity_id": 9, "current": {"name": "Ada"}}))
    tested = cli("test-run", str(automation), "--event", str(preview), *as_admin)
    assert tested.exit_code == 0, tested.output
    assert "person 9 created: succeeded" in tested.output and '{"subject": "Intro call with Ada"}' in tested.output

    types = cli("action-types", *as_admin)
    assert "deal.create" in types.output and "title*" in types.output
    assert cli("delete", str(automation), *as_admin).output.strip() == f"deleted automation {automation}"
    assert cli("list", "--user", "999999").exit_code == 1
    assert "give --user ID" in cli("list").output


def _id_of(t: Tenant, name: str) -> int:
    from models.tables import Automation

    with session_scope() as s:
        found = s.exec(select(Automation.id).where(Automation.company_id == t.id, Automation.name == name)).one()
        assert found is not None
        return found


def test_emit_sends_batches_to_durable_intake(tenant: Callable[..., Tenant], tmp_path: Path) -> None:
    t = tenant()
    events = [event(t.id, "person", "created", n, current={"name": f"P{n}"}) for n in range(1, 251)]
    file = tmp_path / "events.json"
    file.write_text(json.dumps(events))
    result = cli("emit", str(file), "--user", str(t.admin_id))
    assert result.exit_code == 0, result.output
    assert "Sending events" in result.output and "250 events accepted, 0 already received" in result.output
    again = cli("emit", str(file), "--user", str(t.admin_id))
    assert "0 events accepted, 250 already received" in again.output
    with session_scope() as s:
        count = s.exec(select(func.count()).select_from(EventOutbox).where(EventOutbox.company_id == t.id)).one()
    assert count == 250

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([*events[:100], {**events[100], "entity": "invoice"}]))
    refused = cli("emit", str(broken), "--user", str(t.admin_id))
    assert refused.exit_code == 1 and "events[100].entity" in refused.output


def test_the_same_commands_against_a_served_api(served_api: str, tenant: Callable[..., Tenant],
                                                tmp_path: Path) -> None:
    t = tenant()
    issued = cli("token", "--user", str(t.admin_id), "--name", "laptop")
    assert issued.exit_code == 0 and issued.output.startswith("crm_")
    token = issued.output.strip()
    remote = ["--api", served_api, "--token", token]
    file = tmp_path / "welcome.json"
    file.write_text(json.dumps(DEFINITION))
    assert "created automation" in cli("apply", str(file), *remote).output
    assert "updated automation" in cli("apply", str(file), *remote).output  # same name: a new version
    listed = cli("list", *remote)
    assert listed.exit_code == 0 and "Welcome" in listed.output
    wrong = cli("list", "--api", served_api, "--token", "crm_wrong")
    assert wrong.exit_code == 1 and "unknown or revoked API token" in wrong.output
    assert "--token (or API_TOKEN) is needed" in cli("list", "--api", served_api).output
    assert "does not exist" in cli("token", "--user", "999999").output
