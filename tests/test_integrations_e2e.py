"""Integration actions inside real runs: Retry-After waited by Temporal, email + Slack + Trello with one failing
step, and a scan of whole Temporal histories, the run history and the logs for secrets."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from google.protobuf.message import Message as ProtoMessage
from temporalio.client import Client

from models.connections import save_connection
from models.db import session_scope
from models.recordstore import create_record
from models.tables import Automation, Campaign
from starter.fakes import FakeProviders
from tests.helpers import create_automation, emit_and_wait, event, running_worker, steps_of
from tests.provider_fixtures import FakeSmtp, sync_mailbox

LIST_ID = "5f1a2b3c4d5e6f7a8b9c0d1e"
PROJECT = "1201000000000001"


@pytest.fixture
async def skipping_client(time_skipping_env: Any) -> AsyncIterator[Client]:
    async with running_worker(time_skipping_env.client):
        yield time_skipping_env.client


@pytest.fixture
async def dev_client(dev_env: Any) -> AsyncIterator[Client]:
    async with running_worker(dev_env.client):
        yield dev_env.client


def run_id(automation_id: int, raw: dict[str, Any]) -> str:
    return f"automation-{automation_id}-event-{raw['event_id']}"


async def test_slacks_retry_after_is_waited_by_temporal_not_in_the_activity(
        skipping_client: Client, company_factory: Any, connect: Any, fakes: FakeProviders) -> None:
    c = company_factory()
    connect(c.id, "slack")
    automation = create_automation(c.admin_id, {
        "name": "Announce", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [{"action": "slack.post_message", "params": {"channel": "#sales", "text": "{{deal.title}} moved"}}]})
    fakes.rate_limit("slack", times=2, retry_after=30)
    raw = event(c.id, current={"title": "Acme"})
    [result] = await emit_and_wait(skipping_client, raw)
    assert result.status == "succeeded"
    [step] = steps_of(run_id(automation, raw))
    assert step.attempts == 3 and step.output and step.output["channel"] == "C0SALES"
    assert [r.json()["text"] for r in fakes.received("slack")] == ["Acme moved"] * 3
    history = await skipping_client.get_workflow_handle(run_id(automation, raw)).fetch_history()
    scheduled = next(e for e in history.events if e.HasField("activity_task_scheduled_event_attributes"))
    completed = next(e for e in history.events if e.HasField("activity_task_completed_event_attributes"))
    assert scheduled.activity_task_scheduled_event_attributes.task_queue.name.endswith("-slack")
    # Two 429s, each followed by Slack's Retry-After of 30 s on the server's clock.
    assert (completed.event_time.ToDatetime() - scheduled.event_time.ToDatetime()).total_seconds() >= 60


@pytest.mark.integration
async def test_email_slack_and_trello_from_one_deal_event_with_slack_failing(
        dev_client: Client, company_factory: Any, connect: Any, fakes: FakeProviders, smtp: FakeSmtp,
        smtp_mailbox: Any) -> None:
    c = company_factory()
    connect(c.id, "slack", "trello")
    smtp_mailbox(c.id, c.admin_id)
    automation = create_automation(c.admin_id, {
        "name": "Qualified deal", "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3}]},
        "steps": [
            {"action": "email.send", "params": {"to": "{{deal.contact}}", "subject": "Next steps for {{deal.title}}",
                                                "body": "Hello,\n\nlet us talk about {{deal.title}}."}},
            {"action": "slack.post_message", "params": {"channel": "#old-deals", "text": "{{deal.title}} is hot"}},
            {"action": "trello.create_card", "params": {"list_id": LIST_ID, "name": "Onboard {{deal.title}}",
                                                        "due": {"in": "3 days"}}},
        ]})
    raw = event(c.id, current={"title": "Globex", "stage_id": 3, "contact": "grace@globex.example"},
                previous={"stage_id": 2}, user_id=c.rep_id)
    [result] = await emit_and_wait(dev_client, raw)
    assert result.status == "failed" and result.steps == ["succeeded", "failed", "succeeded"]
    email, slack, trello = steps_of(run_id(automation, raw))
    assert (slack.error_type, slack.attempts) == ("is_archived", 1)  # a business error: not retried
    assert "Slack refused the request: is_archived" in (slack.error_message or "")
    assert email.finished_at and slack.finished_at and trello.started_at
    assert email.finished_at <= slack.started_at and slack.finished_at <= trello.started_at  # type: ignore[operator]
    [(envelope, message)] = smtp.messages
    assert envelope.mail_from == "ada@acme.example" and message["Subject"] == "Next steps for Globex"
    assert email.output and email.output["message_id"] == message["Message-ID"]
    [card] = fakes.received("trello")
    assert card.json()["name"] == "Onboard Globex" and trello.output and trello.output["card_id"]


def _strings(message: ProtoMessage) -> Iterator[str]:
    """Every string and bytes value of a protobuf message, recursively (payloads are JSON bytes)."""
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif isinstance(value, str | bytes | ProtoMessage | int | float):
            items = [value]
        else:  # a repeated field
            items = list(value)
        for item in items:
            if isinstance(item, ProtoMessage):
                yield from _strings(item)
            elif isinstance(item, bytes):
                yield item.decode("utf-8", "replace")
            elif isinstance(item, str):
                yield item


@pytest.mark.integration
async def test_no_secret_reaches_temporal_history_the_run_history_or_the_logs(
        dev_client: Client, company_factory: Any, connect: Any, fakes: FakeProviders, smtp: FakeSmtp,
        smtp_mailbox: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    c = company_factory()
    connect(c.id, "slack", "teams_webhook", "trello", "asana", "webhook")
    with session_scope() as s:  # a second Teams connection: the bot
        settings, secrets = fakes.connection_values()["teams_bot"]
        save_connection(s, c.id, "teams_bot", "bot", settings, secrets)
        person, _ = create_record(s, c.id, "person", {"name": "Grace", "email": "grace@globex.example"},
                                  user_id=c.admin_id)
        campaign = Campaign(company_id=c.id, name="Newsletter")
        s.add(campaign)
    smtp_mailbox(c.id, c.admin_id)
    graph_settings, graph_secrets = fakes.connection_values()["graph"]
    sync_mailbox(c.id, c.rep_id, "graph", graph_settings, graph_secrets, "ada@acme.example")
    every = [
        {"action": "email.send", "params": {"to": "{{person.email}}", "subject": "Hi {{person.name}}", "body": "x"}},
        {"action": "slack.post_message", "params": {"channel": "#sales", "text": "{{deal.title}}"}},
        {"action": "slack.post_message", "params": {"channel": "#board", "text": "fails: not in channel"}},
        {"action": "teams.post_message", "params": {"text": "{{deal.title}}", "connection": "teams_webhook"}},
        {"action": "teams.post_message", "params": {"text": "{{deal.title}}", "connection": "bot",
                                                    "conversation_id": "19:sales@thread.tacv2"}},
        {"action": "trello.create_card", "params": {"list_id": LIST_ID, "name": "{{deal.title}}"}},
        {"action": "asana.create_task", "params": {"project": PROJECT, "name": "{{deal.title}}",
                                                   "due": {"in": "1 week"}}},
        {"action": "webhook.call", "params": {"url": fakes.url("hooks") + "private", "connection": "webhook",
                                              "body": {"deal": "{{deal.id}}"}}},
        {"action": "webhook.call", "params": {"url": fakes.url("hooks") + "private", "body": "fails: no auth"}},
        {"action": "campaign.add_person", "params": {"campaign_id": campaign.id}},
    ]
    by_admin = create_automation(c.admin_id, {"name": "Everything", "trigger": {"entity": "deal",
                                                                                 "action": "updated"},
                                              "steps": every})
    # The rep's automation sends through Microsoft Graph (the rep's synced mailbox), and meets a 429 first.
    by_rep = create_automation(c.admin_id, {"name": "Graph mail", "trigger": {"entity": "deal", "action": "updated"},
                                            "steps": every[:1]})
    with session_scope() as s:
        rep_owned = s.get(Automation, by_rep)
        assert rep_owned is not None
        rep_owned.owner_id = c.rep_id
        s.add(rep_owned)
    fakes.rate_limit("graph", retry_after=1)
    raw = event(c.id, current={"title": "Globex", "person_id": person.id})
    outcomes = await emit_and_wait(dev_client, raw)
    assert sorted(o.status for o in outcomes) == ["failed", "succeeded"]
    everything, graph_mail = steps_of(run_id(by_admin, raw)), steps_of(run_id(by_rep, raw))
    assert [s.status for s in everything] == ["succeeded", "succeeded", "failed", "succeeded", "succeeded",
                                              "succeeded", "succeeded", "succeeded", "failed", "succeeded"]
    assert graph_mail[0].status == "succeeded" and graph_mail[0].attempts == 2
    assert len(smtp.messages) == 1 and len(fakes.emails()) == 1

    every_secret = [*fakes.secrets(), smtp.password, *os.environ["CONNECTIONS_KEY"].split(",")]
    assert len(fakes.tokens) == 2  # the bot's and Graph's tokens: they are secrets too
    texts: list[str] = []
    for automation in (by_admin, by_rep):
        history = await dev_client.get_workflow_handle(run_id(automation, raw)).fetch_history()
        for history_event in history.events:
            texts.extend(_strings(history_event))
    for step in everything + graph_mail:
        texts.append(f"{step.params} {step.output} {step.error_type} {step.error_message}")
    texts.extend(record.getMessage() for record in caplog.records)
    texts.extend(f"{record.exc_text or ''} {record.args}" for record in caplog.records)
    captured = capfd.readouterr()
    texts.extend([captured.out, captured.err])
    assert any("Globex" in t for t in texts) and any("not_in_channel" in t for t in texts)  # the scan sees data
    leaked = [secret for secret in every_secret if any(secret in text for text in texts)]
    assert leaked == []
