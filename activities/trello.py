"""`trello.create_card`: a card on a Trello list (REST API, key and token in the Authorization header, never
in the URL), its due date relative to the trigger as in `activity.create`."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from activities.context import ActionContext
from activities.dates import DueSpec, resolve_due
from activities.providers import calling, connection_check, connection_for, http_client, raise_for_answer
from activities.registry import action
from models.connections import OpenConnection

#: Trello counts requests per token over 10 s windows; a 429 without Retry-After waits one window.
RATE_WINDOW_SECONDS = 10.0


class TrelloCardParams(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # "{{deal.value}}" renders to a number
    #: The list's id (open the list's menu in Trello, or GET /1/boards/{board}/lists).
    list_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str | None = None
    #: {in: "1 day"}, {next: friday} or a date; none: no due date. Due at noon, the company's time zone.
    due: DueSpec | None = None
    #: "top" or "bottom" of the list.
    position: str = "bottom"
    connection: str | None = None


def _headers(connection: OpenConnection) -> dict[str, str]:
    key, token = connection.secrets.api_key.get_secret_value(), connection.secrets.token.get_secret_value()
    return {"Authorization": f'OAuth oauth_consumer_key="{key}", oauth_token="{token}"', "Accept": "application/json"}


def due_at(day: date, timezone: str) -> str:
    return datetime.combine(day, time(12), ZoneInfo(timezone)).isoformat()


@action("trello.create_card", TrelloCardParams, external=True, max_per_second=10.0,
        description="Create a card on a Trello list with the company's Trello connection.")
def create_card(ctx: ActionContext, params: TrelloCardParams) -> dict[str, Any]:
    connection = connection_for(ctx, ("trello",), params.connection)
    body: dict[str, Any] = {"idList": params.list_id, "name": params.name, "pos": params.position}
    if params.description:
        body["desc"] = params.description
    if params.due is not None:
        body["due"] = due_at(resolve_due(params.due, ctx.event.occurred_at, ctx.company.timezone),
                             ctx.company.timezone)
    with calling("Trello"), http_client(base_url=str(connection.settings.base_url)) as client:
        response = client.post("cards", json=body, headers=_headers(connection))
    raise_for_answer("Trello", response, rate_window=RATE_WINDOW_SECONDS)
    card = response.json()
    return {"card_id": card["id"], "message_id": card["id"], "url": card.get("shortUrl") or card.get("url"),
            "due": body.get("due")}


@connection_check("trello")
def check(connection: OpenConnection) -> str:
    with calling("Trello"), http_client(base_url=str(connection.settings.base_url)) as client:
        response = client.get("members/me", headers=_headers(connection))
    raise_for_answer("Trello", response, rate_window=RATE_WINDOW_SECONDS)
    return f"member {response.json().get('username')}"
