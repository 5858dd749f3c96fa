"""Integration connections: what each provider needs, secrets encrypted at rest (Fernet, CONNECTIONS_KEY) and
decrypted only by `open_connection`, inside the activity, as `SecretStr` (a repr shows `**********`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, SecretStr, ValidationError
from sqlmodel import Session, select

from models.settings import get_settings
from models.tables import IntegrationConnection, utcnow


class ConnectionProblem(Exception):
    """A connection cannot be saved or used as asked; the message names the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlackSettings(_Strict):
    base_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")


class SlackSecrets(_Strict):
    bot_token: SecretStr


class TeamsWebhookSettings(_Strict):
    pass


class TeamsWebhookSecrets(_Strict):
    #: A Teams Workflows ("Post to a channel when a webhook request is received") URL: its `sig` is the secret.
    url: SecretStr


class MicrosoftAppSettings(_Strict):
    """An Entra ID app authenticating with the client-credentials flow (msal)."""

    client_id: str
    tenant_id: str
    authority_host: AnyHttpUrl = AnyHttpUrl("https://login.microsoftonline.com")


class TeamsBotSettings(MicrosoftAppSettings):
    tenant_id: str = "botframework.com"
    #: The Bot Framework service URL of the team's region, e.g. https://smba.trafficmanager.net/emea/.
    service_url: AnyHttpUrl


class ClientSecret(_Strict):
    client_secret: SecretStr


class TrelloSettings(_Strict):
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.trello.com/1")


class TrelloSecrets(_Strict):
    api_key: SecretStr
    token: SecretStr


class AsanaSettings(_Strict):
    base_url: AnyHttpUrl = AnyHttpUrl("https://app.asana.com/api/1.0")


class AsanaSecrets(_Strict):
    token: SecretStr


class SmtpSettings(_Strict):
    host: str
    port: int = 587
    #: starttls (port 587), tls (implicit, port 465) or none (a local relay).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None


class SmtpSecrets(_Strict):
    password: SecretStr | None = None


class GraphSettings(MicrosoftAppSettings):
    base_url: AnyHttpUrl = AnyHttpUrl("https://graph.microsoft.com/v1.0")


class WebhookSettings(_Strict):
    username: str


class WebhookSecrets(_Strict):
    password: SecretStr


@dataclass(frozen=True)
class ProviderSpec:
    settings: type[BaseModel]
    secrets: type[BaseModel]
    description: str


PROVIDERS: dict[str, ProviderSpec] = {
    "slack": ProviderSpec(SlackSettings, SlackSecrets, "Slack bot token (chat:write)"),
    "teams_webhook": ProviderSpec(TeamsWebhookSettings, TeamsWebhookSecrets, "Teams Workflows webhook URL"),
    "teams_bot": ProviderSpec(TeamsBotSettings, ClientSecret, "Bot Framework app id and secret"),
    "trello": ProviderSpec(TrelloSettings, TrelloSecrets, "Trello API key and token"),
    "asana": ProviderSpec(AsanaSettings, AsanaSecrets, "Asana personal access token"),
    "smtp": ProviderSpec(SmtpSettings, SmtpSecrets, "a mailbox sending over SMTP"),
    "graph": ProviderSpec(GraphSettings, ClientSecret, "mailboxes sending through Microsoft Graph (Mail.Send)"),
    "webhook": ProviderSpec(WebhookSettings, WebhookSecrets, "basic-auth credentials for webhook.call"),
}


@dataclass(frozen=True)
class OpenConnection:
    """A connection with its secrets decrypted: lives only inside the activity that uses it."""

    id: int
    company_id: int
    provider: str
    name: str
    settings: Any
    secrets: Any
    #: Changes when the connection is saved again: caches keyed by (id, updated_at) never serve old secrets.
    updated_at: datetime


def _fernet() -> MultiFernet:
    keys = [k.strip() for k in get_settings().connections_key.get_secret_value().split(",") if k.strip()]
    if not keys:
        raise ConnectionProblem("CONNECTIONS_KEY is not set: generate one with `automations connections keygen`")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        raise ConnectionProblem("CONNECTIONS_KEY is not a comma-separated list of Fernet keys") from None


def _problems(err: ValidationError, part: str) -> str:
    # Only locations and messages: the input (a secret, maybe) is never echoed.
    return "; ".join(f"{part}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())


def _validate(provider: str, settings: dict[str, Any], secrets: dict[str, Any]) -> tuple[BaseModel, BaseModel]:
    spec = PROVIDERS.get(provider)
    if spec is None:
        raise ConnectionProblem(f"unknown provider {provider!r} (known: {', '.join(PROVIDERS)})")
    problems = []
    parsed: list[BaseModel] = []
    for model, values, part in ((spec.settings, settings, "settings"), (spec.secrets, secrets, "secrets")):
        try:
            parsed.append(model.model_validate(values))
        except ValidationError as err:
            problems.append(_problems(err, part))
    if problems:
        raise ConnectionProblem(f"invalid {provider} connection: " + "; ".join(problems))
    return parsed[0], parsed[1]


def _reveal(model: BaseModel) -> dict[str, Any]:
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in model if v is not None}


def save_connection(session: Session, company_id: int, provider: str, name: str, settings: dict[str, Any],
                    secrets: dict[str, Any]) -> IntegrationConnection:
    """Create the company's connection `name`, or replace its settings and secrets."""
    parsed_settings, parsed_secrets = _validate(provider, settings, secrets)
    token = _fernet().encrypt(json.dumps(_reveal(parsed_secrets)).encode()).decode()
    row = session.exec(select(IntegrationConnection).where(IntegrationConnection.company_id == company_id,
                                                           IntegrationConnection.name == name)).first()
    if row is not None and row.provider != provider:
        raise ConnectionProblem(f"connection {name!r} already exists for {row.provider}")
    row = row or IntegrationConnection(company_id=company_id, provider=provider, name=name, secret="")
    row.settings, row.secret, row.updated_at = parsed_settings.model_dump(mode="json"), token, utcnow()
    session.add(row)
    session.flush()
    return row


def find_connection(session: Session, company_id: int, providers: tuple[str, ...],
                    name: str | None) -> IntegrationConnection:
    """The company's connection called `name`, or its only connection of these providers when `name` is None."""
    query = select(IntegrationConnection).where(IntegrationConnection.company_id == company_id,
                                                IntegrationConnection.provider.in_(providers))  # type: ignore[attr-defined]
    if name is not None:
        query = query.where(IntegrationConnection.name == name)
    rows = list(session.exec(query).all())
    kinds = " or ".join(providers)
    if not rows:
        named = f" called {name!r}" if name else ""
        raise ConnectionProblem(f"the company has no {kinds} connection{named}: add one with "
                                "`automations connections add`")
    if len(rows) > 1:
        names = ", ".join(sorted(r.name for r in rows))
        raise ConnectionProblem(f"the company has several {kinds} connections ({names}): set `connection`")
    return rows[0]


def open_connection(row: IntegrationConnection) -> OpenConnection:
    """Decrypt a connection's secrets (only inside the activity that calls the provider)."""
    spec = PROVIDERS[row.provider]
    try:
        secrets = json.loads(_fernet().decrypt(row.secret.encode()))
    except InvalidToken:
        raise ConnectionProblem(f"the secrets of connection {row.name!r} cannot be decrypted with CONNECTIONS_KEY "
                                "(was the key changed?): add the connection again") from None
    assert row.id is not None
    return OpenConnection(id=row.id, company_id=row.company_id, provider=row.provider, name=row.name,
                          settings=spec.settings.model_validate(row.settings),
                          secrets=spec.secrets.model_validate(secrets), updated_at=row.updated_at)


def generate_key() -> str:
    return Fernet.generate_key().decode()
