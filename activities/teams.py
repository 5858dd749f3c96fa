"""`teams.post_message`: an Adaptive Card in a Microsoft Teams channel, through a Teams Workflows webhook or as
a Bot Framework proactive message (msal client-credentials token)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from activities.context import ActionContext
from activities.errors import ValidationError
from activities.microsoft import access_token
from activities.providers import calling, connection_check, connection_for, http_client, raise_for_answer
from activities.registry import action
from models.connections import OpenConnection

BOT_SCOPE = "https://api.botframework.com/.default"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


class TeamsPostParams(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # "{{deal.value}}" renders to a number
    #: The card's text (Adaptive Card TextBlock markdown). Merge fields allowed.
    text: str = Field(min_length=1)
    title: str | None = None
    #: Shown as a FactSet, e.g. {"Deal": "{{deal.title}}", "Value": "{{deal.value}}"}.
    facts: dict[str, str] | None = None
    #: With a bot connection: the channel's conversation id (19:…@thread.tacv2).
    conversation_id: str | None = None
    #: The company's Teams connection (a Workflows webhook or a bot); default: its only one.
    connection: str | None = None


def adaptive_card(params: TeamsPostParams) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if params.title:
        body.append({"type": "TextBlock", "text": params.title, "weight": "Bolder", "size": "Medium", "wrap": True})
    body.append({"type": "TextBlock", "text": params.text, "wrap": True})
    if params.facts:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in params.facts.items()]})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}
    return {"contentType": CARD_TYPE, "contentUrl": None, "content": card}


def _post_to_webhook(connection: OpenConnection, params: TeamsPostParams) -> dict[str, Any]:
    with calling("Teams"), http_client() as client:
        response = client.post(connection.secrets.url.get_secret_value(),
                               json={"type": "message", "attachments": [adaptive_card(params)]})
    raise_for_answer("Teams", response)
    # A Workflows webhook answers 202 with no message id; the flow run id is what identifies the post.
    return {"via": "webhook", "status": response.status_code,
            "message_id": response.headers.get("x-ms-workflow-run-id")}


def _post_as_bot(connection: OpenConnection, params: TeamsPostParams) -> dict[str, Any]:
    if not params.conversation_id:
        raise ValidationError(f"Teams connection {connection.name!r} is a bot: set `conversation_id` "
                              "(the channel's conversation id, 19:…@thread.tacv2)")
    token = access_token(connection, BOT_SCOPE, "Teams")
    url = (f"{str(connection.settings.service_url).rstrip('/')}/v3/conversations/"
           f"{quote(params.conversation_id, safe='')}/activities")
    with calling("Teams"), http_client() as client:
        response = client.post(url, headers={"Authorization": f"Bearer {token}"},
                               json={"type": "message", "attachments": [adaptive_card(params)]})
    raise_for_answer("Teams", response)
    return {"via": "bot", "conversation_id": params.conversation_id, "message_id": response.json().get("id")}


@action("teams.post_message", TeamsPostParams, external=True, max_per_second=4.0,
        description="Post an Adaptive Card to a Microsoft Teams channel (Workflows webhook or bot).")
def post_message(ctx: ActionContext, params: TeamsPostParams) -> dict[str, Any]:
    connection = connection_for(ctx, ("teams_webhook", "teams_bot"), params.connection)
    if connection.provider == "teams_bot":
        return _post_as_bot(connection, params)
    return _post_to_webhook(connection, params)


@connection_check("teams_bot")
def check_bot(connection: OpenConnection) -> str:
    access_token(connection, BOT_SCOPE, "Teams")
    return f"token issued for bot {connection.settings.client_id}"


@connection_check("teams_webhook")
def check_webhook(connection: OpenConnection) -> str:
    result = _post_to_webhook(connection, TeamsPostParams(text="Connection test from CRM automations"))
    return f"test card accepted (HTTP {result['status']})"
