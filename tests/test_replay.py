"""Determinism: the run workflow replays recorded histories without a nondeterminism error.

`tests/histories/*.json` are histories of runs recorded from released versions of the workflow; every
future change must still replay them (runs in flight can last weeks). Record the current version's with
`RECORD_HISTORIES=1 pytest tests/test_replay.py` after bumping VERSION (README "Upgrading"). v0.1's were recorded
before payload encryption, v0.2's with the tests' key ring: the project's converter reads both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from models.db import session_scope
from models.tables import Automation
from starter.codec import data_converter
from starter.intake import emit
from tests.helpers import create_automation, event, outcome, run_status, running_worker, wait_for
from workflows.run import RESUME_IN_ONE_TRANSACTION, AutomationRunWorkflow

HISTORIES = Path(__file__).parent / "histories"
VERSION = "v0.2"

SCENARIOS: dict[str, dict[str, Any]] = {
    "succeeded": {"steps": [{"action": "activity.create", "params": {"subject": "Call {{deal.title}}"}},
                            {"when": {"all": [{"field": "value", "op": "gt", "value": 10}]},
                             "action": "organization.create", "params": {"name": "O"}},
                            {"action": "person.create", "params": {"name": "P"}}]},
    "failed": {"steps": [{"action": "activity.create", "params": {"subject": "Call {{person.name}}"}},
                         {"action": "activity.create", "params": {"subject": "after"}}]},
    "skipped": {"conditions": {"all": [{"field": "value", "op": "gte", "value": 1000}]},
                "steps": [{"action": "activity.create", "params": {"subject": "x"}}]},
    "delayed": {"steps": [{"delay": {"for": "2 days"}}, {"action": "activity.create", "params": {"subject": "x"}}]},
    "stopped": {"steps": [{"delay": {"for": "1 week"}}, {"action": "activity.create", "params": {"subject": "x"}}]},
}


def _replayer() -> Replayer:
    # The project's converter: its codec decrypts what newer versions encrypted and passes the plain payloads
    # of histories recorded before encryption through.
    return Replayer(workflows=[AutomationRunWorkflow], data_converter=data_converter())


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_histories_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await _replayer().replay_workflow(history)


def _patches(path: Path) -> set[str]:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    return {json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
            for e in history.events if e.marker_recorded_event_attributes.marker_name == "core_patch"}


def test_the_v0_2_patch_is_in_new_histories_only() -> None:
    """v0.1's delayed runs replay the old path (no patch marker); v0.2's took the new one (marker recorded)."""
    assert RESUME_IN_ONE_TRANSACTION not in _patches(HISTORIES / "v0.1-delayed.json")
    assert RESUME_IN_ONE_TRANSACTION in _patches(HISTORIES / "v0.2-delayed.json")
    assert RESUME_IN_ONE_TRANSACTION in _patches(HISTORIES / "v0.2-stopped.json")


async def test_fresh_histories_of_every_path_replay(time_skipping_env: Any, company_factory: Any) -> None:
    client = time_skipping_env.client
    histories = {}
    async with running_worker(client):
        for name, definition in SCENARIOS.items():
            c = company_factory()
            automation = create_automation(c.admin_id, {"name": name, "trigger": {"entity": "deal",
                                                                                 "action": "updated"}, **definition})
            [firing] = await emit(client, event(c.id, current={"title": "Deal", "value": 50}))
            if name == "stopped":
                await wait_for(lambda f=firing: run_status(f.workflow_id) == "waiting")
                with session_scope() as s:
                    row = s.get(Automation, automation)
                    assert row is not None
                    row.active = False
                    s.add(row)
            result = await outcome(client, firing.workflow_id)
            assert result.status == name if name != "delayed" else result.status == "succeeded"
            histories[name] = await client.get_workflow_handle(firing.workflow_id).fetch_history()
    for name, history in histories.items():
        await _replayer().replay_workflow(history)
        if os.environ.get("RECORD_HISTORIES"):
            (HISTORIES / f"{VERSION}-{name}.json").write_text(history.to_json())
