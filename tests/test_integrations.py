"""Integration actions, one step at a time: the real step executor (`execute_external_step`, in Temporal's
activity environment) and the real client libraries, talking over sockets to local fakes of each provider."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.runs import execute_external_step, execute_step, record_run
from models.connections import save_connection
from models.db import session_scope
from models.events import EntityEvent
from models.messages import RunRecord, StepInput, StepOutcome, StepPlan
from models.recordstore import create_record
from models.settings import get_settings
from models.tables import Campaign, CampaignMember, IntegrationConnection, StepResult
from starter.fakes import BOT_SCOPE, FakeProviders
from tests.helpers import event
from tests.provider_fixtures import FakeSmtp, sync_mailbox

DEAL = {"id": 7, "title": "Globex renewal", "value": 5000, "stage_id": 3}
#: The trigger happened on Thursday 2026-11-26 at 10:00 UTC (11:00 in Paris).
OCCURRED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def step(company_id: int, owner_id: int, action: str, params: dict[str, Any], *,
         current: dict[str, Any] | None = None) -> StepInput:
    """A run with one pending step, as the workflow would hand it to the executor."""
    raw = event(company_id, current={**DEAL, **(current or {})}, previous={"stage_id": 2},
                occurred_at=OCCURRED.isoformat(), entity_id=7)
    run_id = f"automation-1-event-{raw['event_id']}"
    trigger = EntityEvent.model_validate(raw)
    record_run(RunRecord(run_id=run_id, automation_id=1, automation_version=1, automation_name="Test",
                         event=trigger, status="running", steps=[StepPlan(kind="action", action=action)]))
    return StepInput(run_id=run_id, step_index=0, action=action, params=params, automation_id=1,
                     owner_id=owner_id, event=trigger)


def execute(step_input: StepInput, attempt: int = 1) -> StepOutcome:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    fn = execute_step if step_input.action == "campaign.add_person" else execute_external_step
    result: StepOutcome = env.run(fn, step_input)
    return result


def failure(step_input: StepInput) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        execute(step_input)
    return caught.value


def row(step_input: StepInput) -> StepResult:
    with session_scope() as s:
        found = s.exec(select(StepResult).where(StepResult.run_id == step_input.run_id)).one()
        return found


def assert_business(err: ApplicationError, error_type: str, *words: str) -> None:
    assert (err.type, err.non_retryable) == (error_type, True), (err.type, err.message)
    for word in words:
        assert word in err.message


def assert_retried(err: ApplicationError, error_type: str, delay: float | None = None) -> None:
    assert (err.type, err.non_retryable) == (error_type, False), (err.type, err.message)
    expected = timedelta(seconds=delay) if delay is not None else None
    assert err.next_retry_delay == expected


@pytest.fixture
def company(company_factory: Any, connect: Any) -> Any:
    c = company_factory()
    connect(c.id, "slack", "teams_webhook", "trello", "asana", "webhook")
    return c


# --- Slack -------------------------------------------------------------------------------------


def test_slack_posts_the_rendered_message_with_the_bot_token(company: Any, fakes: FakeProviders) -> None:
    s = step(company.id, company.admin_id, "slack.post_message", {
        "channel": "#sales", "text": "Deal {{deal.title}} reached stage {{deal.stage_id}}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{deal.title}}*: {{deal.value}} EUR"}}]})
    outcome = execute(s)
    [request] = fakes.received("slack")
    assert request.path == "/slack/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {fakes.slack_token}"
    body = request.json()
    assert body["channel"] == "#sales" and body["text"] == "Deal Globex renewal reached stage 3"
    assert body["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": "*Globex renewal*: 5000 EUR"}}]
    assert body["metadata"] == {"event_type": "crm_automation_step", "event_payload": {"key": f"{s.run_id}.step-0"}}
    assert outcome.output["channel"] == "C0SALES" and outcome.output["message_id"] == outcome.output["ts"]
    assert row(s).status == "succeeded" and row(s).output == outcome.output


@pytest.mark.parametrize(("channel", "code"), [("C0OLD", "is_archived"), ("#board", "not_in_channel"),
                                               ("#nowhere", "channel_not_found")])
def test_slack_refusals_fail_the_step_with_slacks_code(company: Any, fakes: FakeProviders, channel: str,
                                                       code: str) -> None:
    s = step(company.id, company.admin_id, "slack.post_message", {"channel": channel, "text": "hi"})
    assert_business(failure(s), code, code)
    assert (row(s).status, row(s).error_type) == ("failed", code)


def test_slack_invalid_auth_is_a_business_error(company: Any, fakes: FakeProviders) -> None:
    with session_scope() as ses:
        save_connection(ses, company.id, "slack", "slack", {"base_url": fakes.url("slack")},
                        {"bot_token": "xoxb-revoked"})
    err = failure(step(company.id, company.admin_id, "slack.post_message", {"channel": "#sales", "text": "hi"}))
    assert_business(err, "invalid_auth", "update the Slack connection")


def test_slack_429_and_outages_are_retried_after_retry_after(company: Any, fakes: FakeProviders) -> None:
    fakes.rate_limit("slack", retry_after=17)
    assert_retried(failure(step(company.id, company.admin_id, "slack.post_message",
                                {"channel": "#sales", "text": "hi"})), "RateLimited", 17)
    fakes.outage("slack")
    assert_retried(failure(step(company.id, company.admin_id, "slack.post_message",
                                {"channel": "#sales", "text": "hi"})), "ProviderUnavailable")


def test_a_missing_merge_field_fails_the_step_before_any_call(company: Any, fakes: FakeProviders) -> None:
    s = step(company.id, company.admin_id, "slack.post_message",
             {"channel": "#sales", "text": "Hello {{person.name}}"})  # the deal has no person
    assert_business(failure(s), "MergeFieldMissing", "params.text", "person")
    assert fakes.received("slack") == []


def test_a_message_needs_text_or_blocks(company: Any, fakes: FakeProviders) -> None:
    err = failure(step(company.id, company.admin_id, "slack.post_message", {"channel": "#sales"}))
    assert_business(err, "ValidationError", "`text` or `blocks`")


# --- Teams -------------------------------------------------------------------------------------


def test_teams_webhook_posts_an_adaptive_card(company: Any, fakes: FakeProviders) -> None:
    outcome = execute(step(company.id, company.admin_id, "teams.post_message", {
        "title": "Won: {{deal.title}}", "text": "Stage {{deal.stage_id}}", "facts": {"Value": "{{deal.value}}"}}))
    [request] = fakes.received("teams")
    body = request.json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert [b.get("text") for b in card["body"][:2]] == ["Won: Globex renewal", "Stage 3"]
    assert card["body"][2] == {"type": "FactSet", "facts": [{"title": "Value", "value": "5000"}]}
    assert outcome.output["status"] == 202 and outcome.output["message_id"].startswith("08584")


def test_teams_webhook_errors(company: Any, fakes: FakeProviders) -> None:
    fakes.rate_limit("teams", retry_after=9)
    assert_retried(failure(step(company.id, company.admin_id, "teams.post_message", {"text": "x"})),
                   "RateLimited", 9)
    with session_scope() as ses:
        save_connection(ses, company.id, "teams_webhook", "teams_webhook", {},
                        {"url": fakes.url("teams").replace("sig=", "sig=stale")})
    err = failure(step(company.id, company.admin_id, "teams.post_message", {"text": "x"}))
    assert_business(err, "DirectApiAuthorizationRequired", "HTTP 401")
    assert "sig" not in err.message and "stale" not in err.message


@pytest.fixture
def bot_company(company_factory: Any, connect: Any) -> Any:
    c = company_factory()
    connect(c.id, "teams_bot")
    return c


def test_teams_bot_posts_proactively_with_a_cached_msal_token(bot_company: Any, fakes: FakeProviders,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(2):
        outcome = execute(step(bot_company.id, bot_company.admin_id, "teams.post_message",
                               {"text": "{{deal.title}} is won", "conversation_id": "19:sales@thread.tacv2"}))
        assert outcome.output["message_id"].startswith("1:")
    token_requests = [r for r in fakes.received("login") if r.path.endswith("/token")]
    assert len(token_requests) == 1  # the second post reused msal's cached token
    assert token_requests[0].path == "/botframework.com/oauth2/v2.0/token"
    posts = fakes.received("bot")
    assert [p.path for p in posts] == ["/bot/v3/conversations/19%3Asales%40thread.tacv2/activities"] * 2
    token = posts[0].headers["authorization"].removeprefix("Bearer ")
    assert fakes.tokens[token] == (fakes.app_id, BOT_SCOPE)
    assert posts[0].json()["attachments"][0]["content"]["body"][0]["text"] == "Globex renewal is won"


@pytest.mark.parametrize(("conversation", "error_type"), [("19:board@thread.tacv2", "BotNotInConversationRoster"),
                                                         ("19:gone@thread.tacv2", "ConversationNotFound")])
def test_teams_bot_refusals(bot_company: Any, fakes: FakeProviders, conversation: str, error_type: str) -> None:
    err = failure(step(bot_company.id, bot_company.admin_id, "teams.post_message",
                       {"text": "x", "conversation_id": conversation}))
    assert_business(err, error_type)


def test_teams_bot_429_and_outage_are_retried(bot_company: Any, fakes: FakeProviders) -> None:
    params = {"text": "x", "conversation_id": "19:sales@thread.tacv2"}
    fakes.rate_limit("bot", retry_after=4)
    assert_retried(failure(step(bot_company.id, bot_company.admin_id, "teams.post_message", params)), "RateLimited", 4)
    fakes.outage("bot", status=502)
    assert_retried(failure(step(bot_company.id, bot_company.admin_id, "teams.post_message", params)),
                   "ProviderUnavailable")


def test_teams_bot_with_a_wrong_secret_or_no_conversation(bot_company: Any, fakes: FakeProviders) -> None:
    err = failure(step(bot_company.id, bot_company.admin_id, "teams.post_message", {"text": "x"}))
    assert_business(err, "ValidationError", "conversation_id")
    settings, _ = fakes.connection_values()["teams_bot"]
    with session_scope() as ses:
        save_connection(ses, bot_company.id, "teams_bot", "teams_bot", settings, {"client_secret": "wrong"})
    err = failure(step(bot_company.id, bot_company.admin_id, "teams.post_message",
                       {"text": "x", "conversation_id": "19:sales@thread.tacv2"}))
    assert_business(err, "invalid_client", "AADSTS7000215")
    assert fakes.received("bot") == []


# --- Trello and Asana --------------------------------------------------------------------------


def test_trello_creates_a_card_due_relative_to_the_trigger(company: Any, fakes: FakeProviders) -> None:
    outcome = execute(step(company.id, company.admin_id, "trello.create_card", {
        "list_id": "5f1a2b3c4d5e6f7a8b9c0d1e", "name": "Onboard {{deal.title}}",
        "description": "Value: {{deal.value}}", "due": {"in": "2 days"}, "position": "top"}))
    [request] = fakes.received("trello")
    assert request.path == "/trello/1/cards" and request.query == {}  # key and token never in the URL
    assert request.headers["authorization"] == (f'OAuth oauth_consumer_key="{fakes.trello_key}", '
                                                f'oauth_token="{fakes.trello_token}"')
    assert request.json() == {"idList": "5f1a2b3c4d5e6f7a8b9c0d1e", "name": "Onboard Globex renewal",
                              "desc": "Value: 5000", "pos": "top", "due": "2026-11-28T12:00:00+01:00"}
    assert outcome.output["card_id"] and outcome.output["url"].startswith("https://trello.com/c/")


def test_trello_errors(company: Any, fakes: FakeProviders) -> None:
    def create(list_id: str = "5f1a2b3c4d5e6f7a8b9c0d1e") -> ApplicationError:
        return failure(step(company.id, company.admin_id, "trello.create_card", {"list_id": list_id, "name": "x"}))

    assert_business(create("nope"), "ProviderRejected", "HTTP 400", "invalid value for idList")
    fakes.rate_limit("trello", retry_after=None)  # Trello's 429 names the limit, without Retry-After
    err = create()
    assert_retried(err, "RateLimited", 10)
    assert "API_TOKEN_LIMIT_EXCEEDED" in err.message
    with session_scope() as ses:
        save_connection(ses, company.id, "trello", "trello", {"base_url": fakes.url("trello")},
                        {"api_key": fakes.trello_key, "token": "expired"})
    assert_business(create(), "ProviderRejected", "HTTP 401", "invalid token")


def test_asana_creates_a_task_in_the_project(company: Any, fakes: FakeProviders) -> None:
    outcome = execute(step(company.id, company.admin_id, "asana.create_task", {
        "project": "1201000000000001", "name": "Kick-off {{deal.title}}", "notes": "{{deal.value}} EUR",
        "due": {"next": "monday"}, "assignee": "ada@acme.example"}))
    [request] = fakes.received("asana")
    assert request.path == "/asana/api/1.0/tasks"
    assert request.headers["authorization"] == f"Bearer {fakes.asana_token}"
    assert request.json() == {"data": {"name": "Kick-off Globex renewal", "notes": "5000 EUR",
                                       "projects": ["1201000000000001"], "due_on": "2026-11-30",
                                       "assignee": "ada@acme.example"}}
    assert outcome.output["due_on"] == "2026-11-30" and outcome.output["task_id"]


def test_asana_errors(company: Any, fakes: FakeProviders) -> None:
    def create(project: str = "1201000000000001") -> ApplicationError:
        return failure(step(company.id, company.admin_id, "asana.create_task", {"project": project, "name": "x"}))

    assert_business(create("999"), "ProviderRejected", "HTTP 404", "Unknown object: 999")
    assert_business(create("not-a-gid"), "ValidationError", "params.project")
    fakes.rate_limit("asana", retry_after=3)
    assert_retried(create(), "RateLimited", 3)
    fakes.outage("asana", status=500)
    err = create()
    assert_retried(err, "ProviderUnavailable")
    assert "Server Error" in err.message


# --- webhooks ----------------------------------------------------------------------------------


def test_webhook_posts_a_templated_json_body_with_an_idempotency_key(company: Any, fakes: FakeProviders) -> None:
    s = step(company.id, company.admin_id, "webhook.call", {
        "url": fakes.url("hooks") + "ok", "body": {"deal": "{{deal.id}}", "title": "{{deal.title}}", "tags": ["x"]}})
    outcome = execute(s)
    [request] = fakes.received("hooks")
    assert request.method == "POST" and request.json() == {"deal": 7, "title": "Globex renewal", "tags": ["x"]}
    assert request.headers["idempotency-key"] == f"{s.run_id}.step-0"
    assert outcome.output["status"] == 200 and outcome.output["response"] == {"received": True, "method": "POST"}


def test_webhook_put_text_and_delete_with_basic_auth(company: Any, fakes: FakeProviders) -> None:
    execute(step(company.id, company.admin_id, "webhook.call", {
        "url": fakes.url("hooks") + "private", "method": "PUT", "body": "deal {{deal.title}}",
        "connection": "webhook"}))
    execute(step(company.id, company.admin_id, "webhook.call", {
        "url": fakes.url("hooks") + "private", "method": "DELETE", "connection": "webhook"}))
    put, delete = fakes.received("hooks")
    assert (put.method, put.body, put.headers["content-type"]) == ("PUT", b"deal Globex renewal",
                                                                   "text/plain; charset=utf-8")
    assert (delete.method, delete.body) == ("DELETE", b"")
    err = failure(step(company.id, company.admin_id, "webhook.call", {"url": fakes.url("hooks") + "private"}))
    assert_business(err, "ProviderRejected", "HTTP 401")


@pytest.mark.parametrize(("status", "retried"), [(400, False), (404, False), (422, False), (500, True),
                                                  (503, True)])
def test_webhook_5xx_is_retried_4xx_is_not(company: Any, fakes: FakeProviders, status: int, retried: bool) -> None:
    err = failure(step(company.id, company.admin_id, "webhook.call", {"url": fakes.url("hooks") + f"status/{status}"}))
    assert err.non_retryable is not retried
    assert f"HTTP {status}" in err.message


def test_webhook_429_waits_the_receivers_retry_after(company: Any, fakes: FakeProviders) -> None:
    fakes.rate_limit("hooks", retry_after=7)
    err = failure(step(company.id, company.admin_id, "webhook.call", {"url": fakes.url("hooks") + "ok"}))
    assert_retried(err, "RateLimited", 7)


def test_webhook_timeout_is_retried(company: Any, fakes: FakeProviders) -> None:
    settings = get_settings()
    previous, settings.integrations_timeout_seconds = settings.integrations_timeout_seconds, 0.3
    try:
        err = failure(step(company.id, company.admin_id, "webhook.call", {"url": fakes.url("hooks") + "slow/1"}))
    finally:
        settings.integrations_timeout_seconds = previous
    assert_retried(err, "ProviderTimeout")
    assert "within 0.3 s" in err.message


# --- email -------------------------------------------------------------------------------------


def test_email_goes_from_the_owners_mailbox_over_smtp(company_factory: Any, smtp: FakeSmtp,
                                                      smtp_mailbox: Any) -> None:
    c = company_factory()
    smtp_mailbox(c.id, c.admin_id)
    s = step(c.id, c.admin_id, "email.send", {
        "to": "{{deal.contact}}", "cc": ["boss@globex.example"], "subject": "About {{deal.title}}",
        "body": "Hello,\n\nthe deal <{{deal.title}}> is at stage {{deal.stage_id}}.\nBye"},
        current={"contact": "grace@globex.example"})
    outcome = execute(s)
    [(envelope, message)] = smtp.messages
    assert envelope.mail_from == "ada@acme.example"
    assert envelope.rcpt_tos == ["grace@globex.example", "boss@globex.example"]
    assert message["From"] == "Admin <ada@acme.example>" and message["Subject"] == "About Globex renewal"
    assert message["Message-ID"] == f"<{s.run_id}.step-0@acme.example>" == outcome.output["message_id"]
    text, html = (bytes(part.get_payload(decode=True)).decode() for part in message.walk()
                  if part.get_content_maintype() == "text")
    assert message.get_content_type() == "multipart/alternative"
    assert "the deal <Globex renewal> is at stage 3." in text
    assert "<p>the deal &lt;Globex renewal&gt; is at stage 3.<br>Bye</p>" in html


def test_email_is_never_sent_from_another_users_mailbox(company_factory: Any, smtp: FakeSmtp,
                                                        smtp_mailbox: Any) -> None:
    c = company_factory()
    smtp_mailbox(c.id, c.rep_id)  # the triggering user has a mailbox; the owner (admin) has none
    s = step(c.id, c.admin_id, "email.send", {"to": "grace@globex.example", "subject": "x", "body": "y"})
    s.event.user_id = c.rep_id
    assert_business(failure(s), "NoSyncedMailbox", "Admin", "has no synced mailbox")
    assert smtp.messages == []


def test_smtp_refusals(company_factory: Any, smtp: FakeSmtp, smtp_mailbox: Any) -> None:
    c = company_factory()
    smtp_mailbox(c.id, c.admin_id)

    def send(to: str) -> ApplicationError:
        return failure(step(c.id, c.admin_id, "email.send", {"to": to, "subject": "x", "body": "y"}))

    assert_business(send("nobody@bounce.example"), "SMTPRecipientsRefused", "550")
    assert_retried(send("someone@later.example"), "SMTPDeferred")
    assert_business(send("not an address"), "ValidationError", "is not an email address")
    with session_scope() as s:
        mailbox = s.exec(select(IntegrationConnection).where(IntegrationConnection.company_id == c.id)).one()
        save_connection(s, c.id, "smtp", mailbox.name, mailbox.settings, {"password": "wrong"})
    assert_business(send("grace@globex.example"), "SMTPAuthenticationError", "login")
    assert smtp.messages == []


def test_email_through_microsoft_graph(company_factory: Any, fakes: FakeProviders) -> None:
    c = company_factory()
    settings, secrets = fakes.connection_values()["graph"]
    sync_mailbox(c.id, c.admin_id, "graph", settings, secrets, "ada@acme.example")
    s = step(c.id, c.admin_id, "email.send", {"to": ["grace@globex.example"], "subject": "About {{deal.title}}",
                                               "body": "Hi"})
    outcome = execute(s)
    [sent] = [r for r in fakes.received("graph")]
    assert sent.path == "/graph/v1.0/users/ada@acme.example/sendMail"
    assert sent.headers["content-type"] == "text/plain"
    [message] = fakes.emails()
    assert message["Subject"] == "About Globex renewal" and message["From"] == "Admin <ada@acme.example>"
    assert message["Message-ID"] == f"<{s.run_id}.step-0@acme.example>"
    assert outcome.output == {"transport": "graph", "from": "ada@acme.example", "to": ["grace@globex.example"],
                              "message_id": message["Message-ID"], "status": 202}
    token = sent.headers["authorization"].removeprefix("Bearer ")
    assert fakes.tokens[token][1] == "https://graph.microsoft.com/.default"
    assert base64.b64decode(sent.body).startswith(b"From: Admin <ada@acme.example>")

    fakes.rate_limit("graph", retry_after=5)
    assert_retried(failure(step(c.id, c.admin_id, "email.send", {"to": "g@globex.example", "subject": "x",
                                                                 "body": "y"})), "RateLimited", 5)
    sync_mailbox(c.id, c.admin_id, "graph", settings, secrets, "left@acme.example")
    err = failure(step(c.id, c.admin_id, "email.send", {"to": "g@globex.example", "subject": "x", "body": "y"}))
    assert_business(err, "ErrorInvalidUser", "left@acme.example")


# --- campaigns and connections -----------------------------------------------------------------


def test_campaign_add_person_is_idempotent(company_factory: Any) -> None:
    c = company_factory()
    with session_scope() as s:
        person, _ = create_record(s, c.id, "person", {"name": "Grace"}, user_id=c.admin_id)
        campaign = Campaign(company_id=c.id, name="Newsletter")
        s.add(campaign)
        s.flush()
        campaign_id = campaign.id
    outputs = [execute(step(c.id, c.admin_id, "campaign.add_person", {"campaign_id": campaign_id},
                            current={"person_id": person.id})).output for _ in range(2)]
    assert [o["added"] for o in outputs] == [True, False]
    with session_scope() as s:
        members = s.exec(select(CampaignMember).where(CampaignMember.campaign_id == campaign_id)).all()
    assert [m.person_id for m in members] == [person.id]
    err = failure(step(c.id, c.admin_id, "campaign.add_person", {"campaign_id": campaign_id}))
    assert_business(err, "ValidationError", "has no person")
    other = failure(step(c.id, c.admin_id, "campaign.add_person", {"campaign_id": 999999},
                         current={"person_id": person.id}))
    assert_business(other, "RecordNotFound", "campaign 999999")


def test_connection_secrets_are_encrypted_at_rest(company: Any, fakes: FakeProviders) -> None:
    with session_scope() as s:
        stored = s.exec(select(IntegrationConnection).where(IntegrationConnection.company_id == company.id,
                                                            IntegrationConnection.provider == "slack")).one()
    assert fakes.slack_token not in stored.secret and fakes.slack_token not in str(stored.settings)
    settings = get_settings()
    previous = settings.connections_key
    settings.connections_key = SecretStr("zOL1JwH4r0yDRDZ8fT8S8aJYq1lNdBqGqu7u1eYvYhM=")  # another key
    try:
        err = failure(step(company.id, company.admin_id, "slack.post_message", {"channel": "#sales", "text": "x"}))
    finally:
        settings.connections_key = previous
    assert_business(err, "ConnectionUnusable", "cannot be decrypted")
    assert fakes.received("slack") == []


def test_missing_or_ambiguous_connections_name_the_problem(company_factory: Any, fakes: FakeProviders) -> None:
    c = company_factory()
    err = failure(step(c.id, c.admin_id, "trello.create_card", {"list_id": "x", "name": "y"}))
    assert_business(err, "ConnectionUnusable", "no trello connection", "automations connections add")
    with session_scope() as s:
        for name in ("sales", "support"):
            save_connection(s, c.id, "slack", name, {"base_url": fakes.url("slack")},
                            {"bot_token": fakes.slack_token})
    err = failure(step(c.id, c.admin_id, "slack.post_message", {"channel": "#sales", "text": "x"}))
    assert_business(err, "ConnectionUnusable", "several slack connections (sales, support)", "`connection`")
    execute(step(c.id, c.admin_id, "slack.post_message", {"channel": "#sales", "text": "x", "connection": "support"}))
    assert len(fakes.received("slack")) == 1


def test_a_retried_step_whose_message_was_recorded_is_not_sent_again(company: Any, fakes: FakeProviders) -> None:
    s = step(company.id, company.admin_id, "slack.post_message", {"channel": "#sales", "text": "once"})
    first = execute(s)
    again = execute(s, attempt=2)  # e.g. the worker died after recording, before Temporal heard of it
    assert again.output == first.output and len(fakes.received("slack")) == 1


def test_due_dates_use_the_company_time_zone(company: Any, fakes: FakeProviders) -> None:
    execute(step(company.id, company.admin_id, "trello.create_card",
                 {"list_id": "5f1a2b3c4d5e6f7a8b9c0d1e", "name": "x", "due": date(2026, 12, 24).isoformat()}))
    assert fakes.received("trello")[0].json()["due"] == "2026-12-24T12:00:00+01:00"
