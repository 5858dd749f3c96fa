"""The run workflow on the time-skipping server, with the real activities and real PostgreSQL (S4)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import func, select
from temporalio.client import Client

from models.db import session_scope
from models.events import EntityEvent
from models.fields import ENTITY_TYPES, TRIGGER_ACTIONS
from models.recordstore import create_record
from models.tables import Activity, Automation, AutomationRun, Deal, EventOutbox, Person, User
from starter.automations import delete_automation
from starter.intake import emit
from starter.relay import publish_pending
from tests.helpers import (
    create_automation,
    emit_and_wait,
    event,
    outcome,
    run_row,
    run_status,
    running_worker,
    steps_of,
    wait_for,
)


@pytest.fixture
async def client(time_skipping_env: Any) -> Any:
    async with running_worker(time_skipping_env.client):
        yield time_skipping_env.client


def activity_step(subject: str = "Follow up", **params: Any) -> dict[str, Any]:
    return {"action": "activity.create", "params": {"subject": subject, **params}}


def count(table: Any, company_id: int, *where: Any) -> int:
    with session_scope() as s:
        return int(s.exec(select(func.count()).select_from(table).where(table.company_id == company_id, *where)).one())


def make_deal(company_id: int, user_id: int, **values: Any) -> tuple[int, EntityEvent]:
    with session_scope() as s:
        deal, created = create_record(s, company_id, "deal", {"title": "Big deal", **values}, user_id=user_id)
        assert deal.id is not None
        return deal.id, created


@pytest.mark.parametrize("action", TRIGGER_ACTIONS)
@pytest.mark.parametrize("entity", ENTITY_TYPES)
async def test_every_trigger_fires_its_automations_only(client: Client, company_factory: Any, entity: str,
                                                        action: str) -> None:
    c = company_factory()
    fires = create_automation(c.admin_id, {"name": f"{entity} {action}",
                                           "trigger": {"entity": entity, "action": action},
                                           "steps": [activity_step(f"{entity} was {action}")]})
    other = "deleted" if action != "deleted" else "created"
    create_automation(c.admin_id, {"name": "other trigger", "trigger": {"entity": entity, "action": other},
                                   "steps": [activity_step("must not run")]})
    outcomes = await emit_and_wait(client, event(c.id, entity, action, 5, current={"id": 5}))
    assert [o.status for o in outcomes] == ["succeeded"]
    with session_scope() as s:
        subjects = s.exec(select(Activity.subject).where(Activity.company_id == c.id)).all()
    assert subjects == [f"{entity} was {action}"]
    run = run_row(run_id_of(c.id))
    assert (run.automation_id, run.entity, run.entity_id, run.trigger_action, run.status) == (
        fires, entity, 5, action, "succeeded")


def run_id_of(company_id: int) -> str:
    with session_scope() as s:
        return s.exec(select(AutomationRun.id).where(AutomationRun.company_id == company_id)).one()


async def test_steps_run_in_order_with_merge_fields_and_step_conditions(client: Client, company_factory: Any) -> None:
    c = company_factory(timezone="Europe/Paris")
    with session_scope() as s:
        person, _ = create_record(s, c.id, "person", {"name": "Grace", "email": "grace@example.com"},
                                  user_id=c.admin_id)
    deal_id, _ = make_deal(c.id, c.admin_id, person_id=person.id, pipeline_id=1, stage_id=3, value=5000)
    automation = create_automation(c.admin_id, {
        "name": "Follow up", "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3}]},
        "steps": [
            activity_step("Call {{person.name}} about {{deal.title}}", type="call", due={"in": "1 day"}),
            {"when": {"all": [{"field": "pipeline_id", "op": "eq", "value": 9}]}, "action": "deal.update",
             "params": {"pipeline_id": 2}},
            {"when": {"all": [{"field": "pipeline_id", "op": "eq", "value": 1}]}, "action": "deal.update",
             "params": {"value": "{{deal.value * 2}}"}},
            {"action": "person.update", "params": {"phone": "+1 555"}},
        ]})
    raw = event(c.id, "deal", "updated", deal_id, occurred_at="2026-11-27T23:30:00+00:00",
                current={"id": deal_id, "title": "Big deal", "stage_id": 3, "pipeline_id": 1, "value": 5000,
                         "person_id": person.id}, previous={"stage_id": 2})
    [result] = await emit_and_wait(client, raw)
    assert result.status == "succeeded"
    assert result.steps == ["succeeded", "skipped", "succeeded", "succeeded"]
    run_id = f"automation-{automation}-event-{raw['event_id']}"
    steps = steps_of(run_id)
    assert [s.status for s in steps] == ["succeeded", "skipped", "succeeded", "succeeded"]
    assert steps[0].params is not None and steps[0].params["subject"] == "Call Grace about Big deal"
    assert steps[1].conditions is not None and steps[1].conditions["failed"] == ["steps[1].when.all[0]"]
    assert all(a.finished_at <= b.started_at for a, b in itertools.pairwise(steps)
               if a.finished_at and b.started_at)
    with session_scope() as s:
        call = s.exec(select(Activity).where(Activity.company_id == c.id)).one()
        deal = s.get(Deal, deal_id)
        grace = s.get(Person, person.id)
    assert (call.subject, call.type, call.deal_id, str(call.due_date)) == (
        "Call Grace about Big deal", "call", deal_id, "2026-11-29")  # Paris: trigger on the 28th, +1 day
    assert deal is not None and deal.value == 10000 and deal.pipeline_id == 1
    assert grace is not None and grace.phone == "+1 555"
    assert run_row(run_id).conditions["held"] is True  # type: ignore[index]


async def test_false_trigger_conditions_are_kept_as_skipped_with_the_reason(client: Client,
                                                                             company_factory: Any) -> None:
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Big only", "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "value", "op": "gte", "value": 1000}]}, "steps": [activity_step()]})
    raw = event(c.id, current={"value": 300}, previous={"value": 200})
    [result] = await emit_and_wait(client, raw)
    assert result.status == "skipped"
    run = run_row(f"automation-{automation}-event-{raw['event_id']}")
    assert run.status == "skipped"
    assert run.reason == "conditions not met: conditions.all[0] (value gte 1000; actual 300)"
    assert count(Activity, c.id) == 0


async def test_a_failed_step_is_recorded_and_later_steps_still_run(client: Client, company_factory: Any) -> None:
    c = company_factory(open_deal_limit=1)
    deal_id, _ = make_deal(c.id, c.admin_id)  # the one open deal the plan allows
    automation = create_automation(c.admin_id, {
        "name": "Upsell", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [activity_step("before"), {"action": "deal.create", "params": {"title": "Upsell {{deal.title}}"}},
                  activity_step("after")]})
    raw = event(c.id, entity_id=deal_id, current={"title": "Big deal"})
    [result] = await emit_and_wait(client, raw)
    assert result.status == "failed"
    steps = steps_of(f"automation-{automation}-event-{raw['event_id']}")
    assert [s.status for s in steps] == ["succeeded", "failed", "succeeded"]
    assert steps[1].error_type == "OpenDealLimitReached"
    assert "open-deal limit reached" in (steps[1].error_message or "")
    assert steps[1].attempts == 1  # a business error is not retried
    assert steps[1].params == {"title": "Upsell Big deal"}
    assert count(Deal, c.id) == 1
    assert count(Activity, c.id) == 2


async def test_a_missing_merge_field_fails_the_step_clearly(client: Client, company_factory: Any) -> None:
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Mail", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [activity_step("Call {{person.name}}"), activity_step("next")]})
    raw = event(c.id, current={"title": "No person"})
    [result] = await emit_and_wait(client, raw)
    assert result.steps == ["failed", "succeeded"]
    failed = steps_of(f"automation-{automation}-event-{raw['event_id']}")[0]
    assert failed.error_type == "MergeFieldMissing"
    assert "params.subject" in (failed.error_message or "") and "person" in (failed.error_message or "")


async def test_import_events_and_inactive_automations_fire_nothing(client: Client, company_factory: Any) -> None:
    c = company_factory()
    create_automation(c.admin_id, {"name": "On", "trigger": {"entity": "deal", "action": "updated"},
                                   "steps": [activity_step()]})
    create_automation(c.admin_id, {"name": "Off", "active": False,
                                   "trigger": {"entity": "deal", "action": "updated"}, "steps": [activity_step()]})
    assert await emit(client, event(c.id, current={"title": "x"}, source="import")) == []
    firings = await emit(client, event(c.id, current={"title": "x"}))
    assert len(firings) == 1  # only the active one


async def test_run_for_limits_whose_changes_fire_it(client: Client, company_factory: Any) -> None:
    c = company_factory()
    create_automation(c.admin_id, {"name": "Only mine", "run_for": [c.admin_id],
                                   "trigger": {"entity": "deal", "action": "updated"}, "steps": [activity_step()]})
    assert await emit(client, event(c.id, current={"title": "x"}, user_id=c.rep_id)) == []
    assert await emit(client, event(c.id, current={"title": "x"})) == []  # no user: not "me"
    assert len(await emit(client, event(c.id, current={"title": "x"}, user_id=c.admin_id))) == 1


async def test_automations_never_fire_across_companies(client: Client, company_factory: Any) -> None:
    a, b = company_factory(), company_factory()
    create_automation(a.admin_id, {"name": "A's", "trigger": {"entity": "deal", "action": "updated"},
                                   "steps": [activity_step()]})
    assert await emit(client, event(b.id, current={"title": "x"})) == []


async def test_a_duplicate_event_starts_one_run(client: Client, company_factory: Any) -> None:
    c = company_factory()
    create_automation(c.admin_id, {"name": "Once", "trigger": {"entity": "deal", "action": "updated"},
                                   "steps": [activity_step()]})
    raw = event(c.id, current={"title": "x"})
    first, second = await asyncio.gather(emit(client, raw), emit(client, raw))
    third = await emit(client, raw)
    started = [f.started for f in first + second + third]
    assert started.count(True) == 1 and len(started) == 3
    await outcome(client, first[0].workflow_id)
    assert count(Activity, c.id) == 1
    with pytest.raises(ValueError, match="already received with a different payload"):
        await emit(client, {**raw, "current": {"title": "changed"}})


async def test_a_run_uses_the_version_active_when_its_event_happened(client: Client, company_factory: Any) -> None:
    from models.tables import User
    from starter.automations import save_automation

    c = company_factory()
    definition = {"name": "Versioned", "trigger": {"entity": "deal", "action": "updated"},
                  "steps": [{"delay": {"for": "1 day"}}, activity_step("version 1")]}
    automation = create_automation(c.admin_id, definition)
    raw = event(c.id, current={"title": "x"})
    [firing] = await emit(client, raw)
    with session_scope() as s:
        admin = s.get(User, c.admin_id)
        assert admin is not None
        save_automation(s, admin, {**definition, "steps": [activity_step("version 2")]}, automation)
    assert (await outcome(client, firing.workflow_id)).status == "succeeded"
    assert run_row(firing.workflow_id).automation_version == 1
    with session_scope() as s:
        assert s.exec(select(Activity.subject).where(Activity.company_id == c.id)).all() == ["version 1"]


async def test_a_delay_of_days_passes_then_later_steps_run(client: Client, company_factory: Any) -> None:
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Wait", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [activity_step("now"), {"delay": {"for": "3 days"}}, activity_step("three days later")]})
    raw = event(c.id, current={"title": "x"})
    [firing] = await emit(client, raw)
    await wait_for(lambda: run_status(firing.workflow_id) == "waiting")
    assert [s.status for s in steps_of(firing.workflow_id)] == ["succeeded", "pending", "pending"]
    result = await outcome(client, firing.workflow_id)  # time skips here
    assert result.status == "succeeded"
    steps = steps_of(f"automation-{automation}-event-{raw['event_id']}")
    assert [s.status for s in steps] == ["succeeded", "succeeded", "succeeded"]
    # The server's clock (skipped) shows the durable timer: three days between start and fire.
    history = await client.get_workflow_handle(firing.workflow_id).fetch_history()
    started = next(e for e in history.events if e.HasField("timer_started_event_attributes"))
    fired = next(e for e in history.events if e.HasField("timer_fired_event_attributes"))
    assert started.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() == timedelta(days=3)
    assert fired.event_time.ToDatetime() - started.event_time.ToDatetime() >= timedelta(days=3)


async def test_a_deactivated_automation_stops_after_its_delay(client: Client, company_factory: Any) -> None:
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Wait", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [{"delay": {"for": "2 weeks"}}, activity_step("never")]})
    [firing] = await emit(client, event(c.id, current={"title": "x"}))
    await wait_for(lambda: run_status(firing.workflow_id) == "waiting")
    with session_scope() as s:
        row = s.get(Automation, automation)
        assert row is not None
        row.active = False
        s.add(row)
    result = await outcome(client, firing.workflow_id)
    assert result.status == "stopped"
    run = run_row(firing.workflow_id)
    assert run.status == "stopped" and run.reason == "automation deactivated during the delay of step 1"
    assert [s.status for s in steps_of(firing.workflow_id)] == ["skipped", "skipped"]
    assert count(Activity, c.id) == 0


async def test_a_deleted_automation_stops_after_its_delay_and_says_so(client: Client, company_factory: Any) -> None:
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Wait", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [activity_step("first"), {"delay": {"for": "3 days"}}, activity_step("never")]})
    [firing] = await emit(client, event(c.id, current={"title": "x"}))
    await wait_for(lambda: run_status(firing.workflow_id) == "waiting")
    with session_scope() as s:
        admin = s.get(User, c.admin_id)
        assert admin is not None
        delete_automation(s, admin, automation)
    result = await outcome(client, firing.workflow_id)
    run = run_row(firing.workflow_id)
    assert result.status == run.status == "stopped"
    assert run.reason == "automation deleted during the delay of step 2"
    assert [s.status for s in steps_of(firing.workflow_id)] == ["succeeded", "skipped", "skipped"]
    assert count(Activity, c.id) == 1


async def relay_until_quiet(client: Client) -> None:
    while await publish_pending(client):
        pass


async def test_a_loop_between_two_automations_is_cut_and_recorded(client: Client, company_factory: Any) -> None:
    c = company_factory()
    deal_id, _ = make_deal(c.id, c.admin_id, value=1)
    ping = create_automation(c.admin_id, {"name": "Ping", "trigger": {"entity": "deal", "action": "updated"},
                                          "steps": [{"action": "deal.update", "params": {"title": "ping"}}]})
    pong = create_automation(c.admin_id, {"name": "Pong", "trigger": {"entity": "deal", "action": "updated"},
                                          "steps": [{"action": "deal.update",
                                                     "params": {"value": "{{deal.value + 1}}"}}]})
    raw = event(c.id, entity_id=deal_id, current={"title": "start", "value": 1}, user_id=c.admin_id)
    await emit_and_wait(client, raw)  # both fire on the user's change
    for _ in range(6):  # follow the chain: each round publishes the events the last round's runs caused
        await relay_until_quiet(client)
        with session_scope() as s:
            runs = s.exec(select(AutomationRun).where(AutomationRun.company_id == c.id)).all()
        for r in runs:
            await outcome(client, r.id)
    with session_scope() as s:
        runs = list(s.exec(select(AutomationRun).where(AutomationRun.company_id == c.id)).all())
        pending = s.exec(select(func.count()).select_from(EventOutbox).where(
            EventOutbox.company_id == c.id, EventOutbox.published_at == None)).one()  # noqa: E711
    stopped = [r for r in runs if r.status == "stopped"]
    assert stopped, "the loop was never cut"
    assert all("loop protection" in (r.reason or "") for r in stopped)
    assert all(r.chain_depth <= 5 for r in runs)
    assert pending == 0
    assert {r.automation_id for r in stopped} <= {ping, pong}
    # Each automation ran at most once per chain: no automation acted on an event its own chain caused.
    assert len([r for r in runs if r.status == "succeeded"]) <= 4


async def test_a_retry_after_the_effect_committed_does_not_apply_it_twice(client: Client,
                                                                          company_factory: Any) -> None:
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Flaky", "trigger": {"entity": "person", "action": "created"},
        "steps": [{"action": "test.create_deal_then_lose_connection", "params": {"title": "Exactly once"}}]})
    raw = event(c.id, "person", "created", 3, current={"name": "x"})
    [result] = await emit_and_wait(client, raw)
    assert result.status == "succeeded"
    [step] = steps_of(f"automation-{automation}-event-{raw['event_id']}")
    assert step.status == "succeeded" and step.attempts == 1  # the committed attempt's record stands
    assert count(Deal, c.id) == 1
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(EventOutbox).where(EventOutbox.company_id == c.id)).one() == 1


async def test_external_actions_run_on_their_family_queue_and_honour_retry_after(client: Client,
                                                                                 company_factory: Any) -> None:
    c = company_factory()
    automation = create_automation(c.admin_id, {
        "name": "Echo", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [activity_step("before"),
                  {"action": "test.external_echo", "params": {"message": "Deal {{deal.title}}", "busy_attempts": 2}},
                  activity_step("after")]})
    raw = event(c.id, current={"title": "Acme"})
    [result] = await emit_and_wait(client, raw)
    assert result.status == "succeeded"
    run_id = f"automation-{automation}-event-{raw['event_id']}"
    steps = steps_of(run_id)
    assert [s.status for s in steps] == ["succeeded"] * 3
    output = steps[1].output or {}
    assert output["echo"] == "Deal Acme" and output["attempt"] == 3 and steps[1].attempts == 3
    assert output["task_queue"].endswith("-test")  # the `test` family's own queue
    history = await client.get_workflow_handle(run_id).fetch_history()
    scheduled = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert len(scheduled) == 1  # only the external step is a regular activity
    completed = next(e for e in history.events if e.HasField("activity_task_completed_event_attributes"))
    # Two rate-limited attempts, each followed by the provider's Retry-After of 30 s (server time).
    assert (completed.event_time.ToDatetime() - scheduled[0].event_time.ToDatetime()).total_seconds() >= 60
