"""Client-credentials tokens (msal) for Microsoft Graph and the Bot Framework, one msal app per connection so
its token cache serves every step until the token nears expiry."""

from __future__ import annotations

import threading
from datetime import datetime

import msal
import requests

from activities.errors import ConnectionUnusable, ProviderRejected, TransientError
from activities.providers import ca_bundle, timeout_seconds
from models.connections import OpenConnection

#: msal errors that retrying cannot fix: the app id, secret or tenant is wrong.
REJECTED = {"invalid_client", "unauthorized_client", "invalid_request", "invalid_scope", "invalid_grant"}

_apps: dict[tuple[int, datetime, str], msal.ConfidentialClientApplication] = {}
_lock = threading.Lock()


def _app(connection: OpenConnection) -> msal.ConfidentialClientApplication:
    settings = connection.settings
    authority = f"{str(settings.authority_host).rstrip('/')}/{settings.tenant_id}"
    key = (connection.id, connection.updated_at, authority)  # a connection saved again gets a new app
    with _lock:
        app = _apps.get(key)
        if app is None:
            app = msal.ConfidentialClientApplication(
                settings.client_id, client_credential=connection.secrets.client_secret.get_secret_value(),
                authority=authority, verify=ca_bundle(), timeout=timeout_seconds(),
                # The tenant's own OpenID configuration is read from the authority; no discovery elsewhere.
                instance_discovery=False)
            _apps[key] = app
        return app


def access_token(connection: OpenConnection, scope: str, service: str) -> str:
    """A bearer token for `scope` (e.g. https://graph.microsoft.com/.default), from msal's cache when fresh."""
    try:
        result = _app(connection).acquire_token_for_client(scopes=[scope])
    except requests.RequestException as err:
        raise TransientError(f"{service}: the Microsoft identity platform could not be reached "
                             f"({type(err).__name__})", type="ProviderUnavailable") from None
    except ValueError as err:  # msal: the authority's OpenID configuration could not be read
        raise ConnectionUnusable(f"{service}: {err}") from None
    if "access_token" in result:
        return str(result["access_token"])
    code = str(result.get("error") or "token_error")
    description = str(result.get("error_description") or "").split("\r\n")[0]
    message = f"{service}: the Microsoft identity platform refused a token: {code} {description}".strip()
    if code in REJECTED:
        raise ProviderRejected(message, type=code)
    raise TransientError(message, type="ProviderUnavailable")
