"""Managing automations: permissions, plans and their caps, versions (S3); and the CLI's `apply`/`runs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from models.db import session_scope
from models.settings import get_settings
from models.tables import Automation, AutomationVersion, User
from starter.automations import PermissionDenied, PlanLimit, delete_automation, save_automation, set_active
from starter.cli import app

SIMPLE = {"name": "Simple", "trigger": {"entity": "deal", "action": "created"},
          "steps": [{"action": "activity.create", "params": {"subject": "Hello {{deal.title}}"}}]}


def actor(user_id: int) -> Any:
    return lambda s: s.get(User, user_id)


def test_only_admins_or_permitted_users_manage_automations(company_factory: Any) -> None:
    c = company_factory()
    with session_scope() as s:
        rep = s.get(User, c.rep_id)
        assert rep is not None
        with pytest.raises(PermissionDenied, match="neither a global admin nor allowed"):
            save_automation(s, rep, SIMPLE)
        rep.permission_set = {"manage_automations": True}
        s.add(rep)
        s.flush()
        assert save_automation(s, rep, SIMPLE).owner_id == rep.id


def test_plans_without_automations_are_refused(company_factory: Any) -> None:
    c = company_factory(plan="essential")
    with session_scope() as s, pytest.raises(PlanLimit, match="not available on the essential plan"):
        save_automation(s, s.get(User, c.admin_id), SIMPLE)  # type: ignore[arg-type]


def test_the_active_cap_counts_active_automations_only(company_factory: Any) -> None:
    c = company_factory(plan="advanced")
    settings = get_settings()
    settings.plan_limits["advanced"], cap = 2, settings.plan_limits["advanced"]
    try:
        with session_scope() as s:
            admin = s.get(User, c.admin_id)
            assert admin is not None
            first = save_automation(s, admin, SIMPLE)
            save_automation(s, admin, {**SIMPLE, "name": "Second"})
            with pytest.raises(PlanLimit, match="allows 2 active automations"):
                save_automation(s, admin, {**SIMPLE, "name": "Third"})
            third = save_automation(s, admin, {**SIMPLE, "name": "Third", "active": False})
            with pytest.raises(PlanLimit):
                set_active(s, admin, third.id or 0, True)
            set_active(s, admin, first.id or 0, False)
            assert set_active(s, admin, third.id or 0, True).active
    finally:
        settings.plan_limits["advanced"] = cap


def test_each_save_is_a_new_immutable_version(company_factory: Any) -> None:
    c = company_factory()
    with session_scope() as s:
        admin = s.get(User, c.admin_id)
        assert admin is not None
        automation = save_automation(s, admin, SIMPLE)
        save_automation(s, admin, {**SIMPLE, "description": "v2"}, automation.id)
        versions = s.exec(select(AutomationVersion).where(AutomationVersion.automation_id == automation.id)).all()
        assert [(v.version, v.definition.get("description", "")) for v in versions] == [(1, ""), (2, "v2")]
        delete_automation(s, admin, automation.id or 0)
        assert s.get(Automation, automation.id) is None


def test_another_company_cannot_touch_an_automation(company_factory: Any) -> None:
    a, b = company_factory(), company_factory()
    with session_scope() as s:
        automation = save_automation(s, s.get(User, a.admin_id), SIMPLE)  # type: ignore[arg-type]
        with pytest.raises(LookupError, match="not found"):
            set_active(s, s.get(User, b.admin_id), automation.id or 0, False)  # type: ignore[arg-type]


def test_cli_apply_creates_then_versions_and_reports_error_paths(company_factory: Any, tmp_path: Path) -> None:
    c = company_factory()
    runner = CliRunner()
    good = tmp_path / "automation.yaml"
    good.write_text("""
name: Welcome
trigger: {entity: person, action: created}
steps:
  - action: activity.create
    params: {subject: "Intro call with {{person.name}}", due: {next: monday}}
""")
    result = runner.invoke(app, ["apply", str(good), "--user", str(c.admin_id)])
    assert result.exit_code == 0, result.output
    assert "created automation" in result.output and "(version 1)" in result.output
    result = runner.invoke(app, ["apply", str(good), "--user", str(c.admin_id)])
    assert "updated automation" in result.output and "(version 2)" in result.output

    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "Bad", "trigger": {"entity": "person", "action": "created"},'
                   ' "steps": [{"action": "activity.create", "params": {"subject": "x", "due": {"in": "later"}}}]}')
    result = runner.invoke(app, ["apply", str(bad), "--user", str(c.admin_id)])
    assert result.exit_code == 1
    assert "steps[0].params.due.in" in result.output

    result = runner.invoke(app, ["apply", str(good), "--user", str(c.rep_id)])
    assert result.exit_code == 1 and "neither a global admin" in result.output


def test_cli_runs_lists_the_history(company_factory: Any) -> None:
    from datetime import UTC, datetime

    from models.tables import AutomationRun

    c = company_factory()
    with session_scope() as s:
        s.add(AutomationRun(id=f"run-{c.id}", company_id=c.id, automation_id=1, automation_version=1,
                            automation_name="Listed", event_id=f"listed-{c.id}", entity="deal", entity_id=9,
                            trigger_action="updated", status="skipped", reason="conditions not met",
                            started_at=datetime.now(UTC)))
    result = CliRunner().invoke(app, ["runs", "--company", str(c.id)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"run-{c.id}" in result.output and "skipped" in result.output and "deal 9 updated" in result.output
    result = CliRunner().invoke(app, ["runs", "--company", str(c.id), "--status", "failed"])
    assert f"run-{c.id}" not in result.output


def test_cli_run_shows_steps_and_finds_a_run_by_its_short_id(company_factory: Any) -> None:
    import uuid
    from datetime import UTC, datetime

    from models.tables import AutomationRun, StepResult
    from starter.cli import short_run_id

    c = company_factory()
    run_id = f"automation-{c.id}-event-{uuid.uuid4()}"
    with session_scope() as s:
        s.add(AutomationRun(id=run_id, company_id=c.id, automation_id=1, automation_version=2,
                            automation_name="Shown", event_id=str(uuid.uuid4()), entity="deal", entity_id=9,
                            trigger_action="updated", status="failed", started_at=datetime.now(UTC)))
        s.flush()
        s.add(StepResult(run_id=run_id, step_index=0, kind="action", action="deal.create", status="failed",
                         error_type="OpenDealLimitReached", error_message="open-deal limit reached"))
    result = CliRunner().invoke(app, ["run", short_run_id(run_id)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Shown" in result.output and "OpenDealLimitReached: open-deal limit reached" in result.output
    assert run_id in result.output  # the UI link names the full id
    result = CliRunner().invoke(app, ["run", "automation-nope"])
    assert result.exit_code == 1 and "no run" in result.output
