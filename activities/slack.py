"""`slack.post_message`: a message (text and/or Block Kit blocks) in a channel, with slack-sdk's WebClient."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from activities.context import ActionContext
from activities.errors import ProviderRejected, TransientError
from activities.providers import clip, connection_check, connection_for, retry_after, ssl_context, timeout_seconds
from activities.registry import action
from models.connections import OpenConnection

#: Slack's own words for failures worth retrying; any other error code is the request's fault.
TRANSIENT_CODES = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
#: What an admin should do about the common refusals.
HINTS = {
    "channel_not_found": "the channel does not exist, or the bot cannot see it",
    "not_in_channel": "invite the bot to the channel",
    "is_archived": "the channel is archived",
    "invalid_auth": "the bot token is invalid: update the Slack connection",
    "token_revoked": "the bot token was revoked: update the Slack connection",
    "account_inactive": "the bot's account is inactive: update the Slack connection",
    "missing_scope": "the bot token lacks the chat:write scope",
}


class SlackPostParams(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # "{{deal.value}}" renders to a number
    #: A channel id (C0123…) or name (#sales).
    channel: str = Field(min_length=1)
    #: The message, or the notification fallback when `blocks` are given. Merge fields allowed.
    text: str | None = None
    #: Block Kit blocks (https://api.slack.com/block-kit); merge fields allowed in their strings.
    blocks: list[dict[str, Any]] | None = None
    #: The company's Slack connection to post with; default: its only one.
    connection: str | None = None

    @model_validator(mode="after")
    def _has_content(self) -> SlackPostParams:
        if not self.text and not self.blocks:
            raise ValueError("a message needs `text` or `blocks`")
        return self


def _client(connection: OpenConnection) -> WebClient:
    # retry_handlers=[]: retries are Temporal's (with backoff, visible in history), never inside the activity.
    return WebClient(token=connection.secrets.bot_token.get_secret_value(),
                     base_url=str(connection.settings.base_url).rstrip("/") + "/",
                     timeout=math.ceil(timeout_seconds()), ssl=ssl_context(), retry_handlers=[])


def _error(err: SlackApiError) -> Exception:
    response = err.response
    code = str(response.get("error") or f"HTTP {response.status_code}")
    if response.status_code == 429 or code == "ratelimited":
        return TransientError(f"Slack rate limit: {code}", retry_after=retry_after(response.headers, 1.0),
                              type="RateLimited")
    if response.status_code >= 500 or code in TRANSIENT_CODES:
        return TransientError(f"Slack is unavailable: {clip(code)}", retry_after=retry_after(response.headers),
                              type="ProviderUnavailable")
    hint = HINTS.get(code)
    return ProviderRejected(f"Slack refused the request: {code}" + (f" ({hint})" if hint else ""), type=code)


@contextmanager
def _calling() -> Iterator[None]:
    try:
        yield
    except SlackApiError as err:
        raise _error(err) from None
    except OSError as err:  # URLError, timeouts, refused connections
        raise TransientError(f"Slack could not be reached ({type(err).__name__})", type="ProviderUnavailable") from None


@action("slack.post_message", SlackPostParams, external=True, max_per_second=1.0,
        description="Post a message to a Slack channel with the company's Slack bot.")
def post_message(ctx: ActionContext, params: SlackPostParams) -> dict[str, Any]:
    client = _client(connection_for(ctx, ("slack",), params.connection))
    with _calling():
        response = client.chat_postMessage(
            channel=params.channel, text=params.text, blocks=params.blocks,
            # Message metadata ties the post to its run and step for whoever reads the channel's history.
            metadata={"event_type": "crm_automation_step", "event_payload": {"key": ctx.idempotency_key}})
    return {"channel": response["channel"], "ts": response["ts"], "message_id": response["ts"]}


@connection_check("slack")
def check(connection: OpenConnection) -> str:
    with _calling():
        response = _client(connection).auth_test()
    return f"bot {response.get('user')} in workspace {response.get('team')}"
