"""`webhook.call`: POST, PUT or DELETE a templated JSON or text body to a URL, with optional basic auth from a
company connection and an Idempotency-Key header stable across retries of the step."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict

from activities.context import ActionContext
from activities.providers import calling, clip, connection_for, http_client, raise_for_answer
from activities.registry import action

#: How much of the receiver's answer is kept as the step's output.
RESPONSE_CHARS = 1000


class WebhookParams(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # "{{deal.value}}" renders to a number
    url: AnyHttpUrl
    method: Literal["POST", "PUT", "DELETE"] = "POST"
    #: An object or list is sent as JSON; a string as text. Merge fields allowed anywhere in it.
    body: dict[str, Any] | list[Any] | str | None = None
    #: Extra request headers. Definitions are not secret: credentials go in a `webhook` connection.
    headers: dict[str, str] | None = None
    #: A `webhook` connection holding basic-auth credentials for this receiver.
    connection: str | None = None


def _detail(response: httpx.Response) -> tuple[str | None, str]:
    # Any receiver's error body is just text to show: it names no error type of ours.
    return None, clip(response.text) or response.reason_phrase


def _answer(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return clip(response.text)[:RESPONSE_CHARS] or None


@action("webhook.call", WebhookParams, external=True, max_per_second=20.0,
        description="Call a URL (POST/PUT/DELETE) with a templated JSON or text body.")
def call(ctx: ActionContext, params: WebhookParams) -> dict[str, Any]:
    auth: httpx.BasicAuth | None = None
    if params.connection:
        connection = connection_for(ctx, ("webhook",), params.connection)
        auth = httpx.BasicAuth(connection.settings.username, connection.secrets.password.get_secret_value())
    headers = {**(params.headers or {}), "Idempotency-Key": ctx.idempotency_key}
    content: dict[str, Any] = {}
    if isinstance(params.body, str):
        content["content"] = params.body.encode()
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    elif params.body is not None:
        content["json"] = params.body
    with calling("The webhook receiver"), http_client() as client:
        response = client.request(params.method, str(params.url), headers=headers, auth=auth, **content)
    raise_for_answer("The webhook receiver", response, codes=_detail)
    answer = _answer(response)
    if isinstance(answer, str | dict | list) and len(json.dumps(answer)) > RESPONSE_CHARS:
        answer = clip(json.dumps(answer))
    return {"status": response.status_code, "response": answer,
            "message_id": response.headers.get("x-request-id") or ctx.idempotency_key}
