"""What every integration shares: the company's connection, TLS trust, one HTTP client, and the mapping of a
provider's answers onto the error taxonomy (4xx business error, 429 Retry-After, 5xx/timeouts retried)."""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import certifi
import httpx

from activities.context import ActionContext
from activities.errors import ConnectionUnusable, ProviderRejected, TransientError
from models.connections import ConnectionProblem, OpenConnection, find_connection, open_connection
from models.settings import get_settings
from models.tables import IntegrationConnection

#: The longest provider text kept in an error message.
DETAIL_CHARS = 300

# The HTTP libraries log full request URLs, and for some providers the URL is the secret (a Teams
# Workflows URL carries its signature): keep them to warnings, whatever the root level is.
for _name in ("httpx", "httpcore", "urllib3", "msal"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def connection_for(ctx: ActionContext, providers: tuple[str, ...], name: str | None) -> OpenConnection:
    """The company's connection for this step, secrets decrypted; a business error if there is none."""
    try:
        return opened(find_connection(ctx.session, ctx.company.id or 0, providers, name))
    except ConnectionProblem as err:
        raise ConnectionUnusable(str(err)) from None


def opened(row: IntegrationConnection) -> OpenConnection:
    try:
        return open_connection(row)
    except ConnectionProblem as err:
        raise ConnectionUnusable(str(err)) from None


#: How `automations connections test` checks a connection of each provider: returns what it found.
ConnectionCheck = Callable[[OpenConnection], str]
CONNECTION_CHECKS: dict[str, ConnectionCheck] = {}


def connection_check(*providers: str) -> Callable[[ConnectionCheck], ConnectionCheck]:
    def register(fn: ConnectionCheck) -> ConnectionCheck:
        for provider in providers:
            CONNECTION_CHECKS[provider] = fn
        return fn

    return register


def check_connection(row: IntegrationConnection) -> str:
    """Call the provider with the connection's credentials; raises the taxonomy's errors when it fails."""
    from activities.registry import discover

    discover()
    return CONNECTION_CHECKS[row.provider](opened(row))


@lru_cache
def _ssl_context(bundle: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=bundle or certifi.where())


def ssl_context() -> ssl.SSLContext:
    """TLS trust for calls to providers: INTEGRATIONS_CA_BUNDLE when set, else the certifi bundle."""
    bundle = get_settings().integrations_ca_bundle
    return _ssl_context(str(bundle) if bundle else None)


def ca_bundle() -> str | bool:
    """The same trust for `requests` (msal's HTTP client), which takes a path."""
    bundle = get_settings().integrations_ca_bundle
    return str(bundle) if bundle else True


def timeout_seconds() -> float:
    """How long any call to an outside service may take (INTEGRATIONS_TIMEOUT_SECONDS, 10 s)."""
    return get_settings().integrations_timeout_seconds


def http_client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(timeout=timeout_seconds(), verify=ssl_context(), follow_redirects=False, **kwargs)


def retry_after(headers: Any, default: float | None = None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date)."""
    value = headers.get("Retry-After") if headers else None
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"


def error_detail(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from the common error body shapes: {"error": {"code", "message"}} (Microsoft),
    {"errors": [{"message"}]} (Asana), {"error", "message"} (Trello's 429), or plain text (Trello)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, clip(response.text) or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return error.get("code"), clip(str(error.get("message") or error.get("code") or ""))
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return None, clip("; ".join(str(e.get("message", "")) for e in errors))
        if isinstance(error, str):
            return error, clip(str(body.get("message") or error))
    return None, clip(response.text)


def raise_for_answer(provider: str, response: httpx.Response, *, rate_window: float | None = None,
                     codes: Callable[[httpx.Response], tuple[str | None, str]] = error_detail) -> None:
    """Map a provider's non-2xx answer onto the taxonomy. Messages never include the URL (it may be secret).

    `rate_window`: the provider's rate-limit window, waited when a 429 comes without Retry-After."""
    status = response.status_code
    if 200 <= status < 300:
        return
    code, message = codes(response)
    described = f"{provider} answered HTTP {status}" + (f" {code}" if code else "")
    described += f": {message}" if message else ""
    if status == 429:
        raise TransientError(described, retry_after=retry_after(response.headers, rate_window), type="RateLimited")
    if status >= 500 or status == 408:
        raise TransientError(described, retry_after=retry_after(response.headers), type="ProviderUnavailable")
    raise ProviderRejected(described, type=code or "ProviderRejected")


@contextmanager
def calling(provider: str) -> Iterator[None]:
    """Network failures become retryable errors naming the provider (never the URL, which may be secret)."""
    try:
        yield
    except httpx.TimeoutException:
        raise TransientError(f"{provider} did not answer within {timeout_seconds():g} s",
                             type="ProviderTimeout") from None
    except httpx.TransportError as err:
        raise TransientError(f"{provider} could not be reached ({type(err).__name__})",
                             type="ProviderUnavailable") from None
