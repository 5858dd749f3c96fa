"""`email.send`: one MIME message (HTML + plain text, a Message-ID derived from run and step) from the automation
owner's synced mailbox only, over SMTP (STARTTLS, login) or Microsoft Graph `sendMail` (msal token)."""

from __future__ import annotations

import base64
import email.policy
import html
import re
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from activities.context import ActionContext
from activities.errors import ConnectionUnusable, NoSyncedMailbox, ProviderRejected, TransientError
from activities.microsoft import access_token
from activities.providers import (
    calling,
    connection_check,
    http_client,
    opened,
    raise_for_answer,
    ssl_context,
    timeout_seconds,
)
from activities.registry import action
from models.connections import OpenConnection
from models.tables import IntegrationConnection, User

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
#: CRLF line ends; headers unfolded up to RFC 5322's limit, so a long Message-ID stays on one line.
MESSAGE_POLICY = email.policy.SMTP.clone(max_line_length=998)
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


def _addresses(value: str | list[str] | None) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or [])
    found = [a.strip() for item in items for a in item.split(",") if a.strip()]
    for address in found:
        if not _ADDRESS.match(address):
            raise ValueError(f"{address!r} is not an email address")
    return found


class EmailParams(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # "{{deal.value}}" renders to a number
    #: One address, a comma-separated list, or a list; usually a merge field: "{{person.email}}".
    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str = Field(min_length=1)
    #: Plain text; the HTML part is made from it (escaped, paragraphs and line breaks kept).
    body: str = Field(min_length=1)

    @field_validator("to", "cc", "bcc", mode="before")
    @classmethod
    def _split(cls, value: Any) -> list[str]:
        return _addresses(value)


@contextmanager
def _smtp_errors() -> Iterator[None]:
    """SMTP replies onto the taxonomy: 4xx and dropped connections retry, 5xx and refused logins do not."""
    try:
        yield
    except smtplib.SMTPAuthenticationError as err:
        raise ProviderRejected(f"the SMTP server refused the mailbox's login ({err.smtp_code}): update its "
                               "connection", type="SMTPAuthenticationError") from None
    except smtplib.SMTPRecipientsRefused as err:
        refused = ", ".join(f"{a} ({code})" for a, (code, _) in err.recipients.items())
        if all(400 <= code < 500 for code, _ in err.recipients.values()):
            raise TransientError(f"the SMTP server deferred every recipient: {refused}", type="SMTPDeferred") from None
        raise ProviderRejected(f"the SMTP server refused every recipient: {refused}",
                               type="SMTPRecipientsRefused") from None
    except smtplib.SMTPResponseException as err:
        text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        message = f"the SMTP server answered {err.smtp_code}: {text}"
        if 400 <= err.smtp_code < 500:
            raise TransientError(message, type="SMTPDeferred") from None
        raise ProviderRejected(message, type=type(err).__name__) from None
    except smtplib.SMTPNotSupportedError as err:
        raise ConnectionUnusable(f"the SMTP server does not support it: {err}") from None
    except ssl.SSLCertVerificationError as err:
        raise ConnectionUnusable(f"the SMTP server's certificate is not trusted: {err.verify_message}") from None
    except (smtplib.SMTPException, OSError) as err:  # disconnections, timeouts, refused connections
        raise TransientError(f"the SMTP server could not be reached ({type(err).__name__})",
                             type="ProviderUnavailable") from None


@contextmanager
def _smtp(connection: OpenConnection) -> Iterator[smtplib.SMTP]:
    settings = connection.settings
    # Errors raised by the caller's block arrive at the `yield`, inside this mapping too.
    with _smtp_errors():
        if settings.security == "tls":
            server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout_seconds(),
                                                    context=ssl_context())
        else:
            server = smtplib.SMTP(settings.host, settings.port, timeout=timeout_seconds())
        with server:
            if settings.security == "starttls":
                server.starttls(context=ssl_context())
            if settings.username:
                password = connection.secrets.password
                server.login(settings.username, password.get_secret_value() if password else "")
            yield server


def _html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    rendered = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f"<!DOCTYPE html><html><body>{rendered}</body></html>"


def compose(ctx: ActionContext, owner: User, address: str, params: EmailParams) -> EmailMessage:
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = formataddr((owner.name, address))
    message["To"] = ", ".join(params.to)
    if params.cc:
        message["Cc"] = ", ".join(params.cc)
    message["Subject"] = params.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{ctx.idempotency_key}@{address.split('@', 1)[1]}>"
    message.set_content(params.body)
    message.add_alternative(_html(params.body), subtype="html")
    return message


def owner_mailbox(ctx: ActionContext) -> tuple[User, str, IntegrationConnection]:
    """The automation owner's synced mailbox (address and connection); emails never go out from another."""
    owner = ctx.session.get(User, ctx.owner_id)
    if owner is None or owner.company_id != ctx.company.id:
        raise NoSyncedMailbox(f"the automation owner (user {ctx.owner_id}) is not a user of this company")
    mailbox = owner.mailbox or {}
    connection = ctx.session.get(IntegrationConnection, mailbox.get("connection_id") or 0)
    if not mailbox.get("address") or connection is None or connection.company_id != ctx.company.id \
            or connection.provider not in ("smtp", "graph"):
        raise NoSyncedMailbox(f"the automation owner {owner.name} (user {owner.id}) has no synced mailbox: "
                              "emails are only sent from the owner's mailbox")
    return owner, str(mailbox["address"]), connection


def _send_smtp(connection: OpenConnection, message: EmailMessage, recipients: list[str]) -> dict[str, Any]:
    with _smtp(connection) as server:
        refused = server.send_message(message, to_addrs=recipients)
    return {"refused": {a: code for a, (code, _) in refused.items()}}


def _send_graph(connection: OpenConnection, address: str, message: EmailMessage) -> dict[str, Any]:
    token = access_token(connection, GRAPH_SCOPE, "Microsoft Graph")
    url = f"{str(connection.settings.base_url).rstrip('/')}/users/{quote(address, safe='@')}/sendMail"
    with calling("Microsoft Graph"), http_client() as client:
        # The MIME form keeps our Message-ID and both parts; Graph answers 202 with no body.
        response = client.post(url, content=base64.b64encode(message.as_bytes()),
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})
    raise_for_answer("Microsoft Graph", response)
    return {"status": response.status_code}


@action("email.send", EmailParams, external=True, max_per_second=0.5,
        description="Send an email from the automation owner's synced mailbox (SMTP or Microsoft Graph).")
def send(ctx: ActionContext, params: EmailParams) -> dict[str, Any]:
    owner, address, row = owner_mailbox(ctx)
    connection = opened(row)
    message = compose(ctx, owner, address, params)
    recipients = [*params.to, *params.cc, *params.bcc]
    if connection.provider == "graph":
        sent = _send_graph(connection, address, message)
    else:
        sent = _send_smtp(connection, message, recipients)
    return {"transport": connection.provider, "from": address, "to": params.to,
            "message_id": message["Message-ID"], **sent}


@connection_check("smtp")
def check_smtp(connection: OpenConnection) -> str:
    with _smtp(connection) as server:
        code, _ = server.noop()
    login = f" as {connection.settings.username}" if connection.settings.username else ""
    return f"connected to {connection.settings.host}:{connection.settings.port}{login} (NOOP {code})"


@connection_check("graph")
def check_graph(connection: OpenConnection) -> str:
    access_token(connection, GRAPH_SCOPE, "Microsoft Graph")
    return f"token issued for app {connection.settings.client_id}"
