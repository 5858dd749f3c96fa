"""Fixtures for integration actions (a pytest plugin of conftest): a trustme CA trusted via INTEGRATIONS_CA_BUNDLE,
the fake providers over TLS, an aiosmtpd server (STARTTLS, login), and companies connected to them."""

from __future__ import annotations

import email
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography.fernet import Fernet

from models.connections import save_connection
from models.db import session_scope
from models.settings import get_settings
from models.tables import User
from starter.fakes import FakeProviders

# Secrets are encrypted with a key of this test session (the worker subprocesses inherit it).
os.environ.setdefault("CONNECTIONS_KEY", Fernet.generate_key().decode())

#: Variables through which requests (msal) or httpx would trust or route differently than configured.
TRUST_AND_PROXY_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "HTTPS_PROXY", "HTTP_PROXY",
                             "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[trustme.CA]:
    ca = trustme.CA()
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    saved = {name: os.environ.pop(name) for name in TRUST_AND_PROXY_VARIABLES if name in os.environ}
    settings = get_settings()
    previous, settings.integrations_ca_bundle = settings.integrations_ca_bundle, Path(bundle)
    yield ca
    settings.integrations_ca_bundle = previous
    os.environ.update(saved)


@pytest.fixture(scope="session")
def fake_server(test_ca: trustme.CA) -> Iterator[FakeProviders]:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with FakeProviders(tls=context) as fakes:
        yield fakes


@pytest.fixture
def fakes(fake_server: FakeProviders) -> FakeProviders:
    fake_server.reset()
    return fake_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeSmtp:
    """Accepts mail for anyone except @bounce.example (550) and @later.example (451) recipients."""

    port: int
    username: str = "ada@acme.example"
    password: str = field(default_factory=lambda: Fernet.generate_key().decode()[:20])
    messages: list[tuple[Envelope, Message]] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.endswith("@bounce.example"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.endswith("@later.example"):
            return f"451 4.3.0 <{address}>: Temporary lookup failure"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.messages.append((envelope, email.message_from_bytes(raw)))
        return "250 2.0.0 Ok: queued"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.username \
            and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="session")
def smtp_server(test_ca: trustme.CA) -> Iterator[FakeSmtp]:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    fake = FakeSmtp(port=free_port())
    controller = Controller(fake, hostname="127.0.0.1", port=fake.port, server_hostname="localhost",
                            tls_context=context, require_starttls=True, auth_required=True,
                            authenticator=fake.authenticate)
    controller.start()
    yield fake
    controller.stop()


@pytest.fixture
def smtp(smtp_server: FakeSmtp) -> FakeSmtp:
    smtp_server.messages.clear()
    return smtp_server


@pytest.fixture
def connect(fakes: FakeProviders) -> Callable[..., None]:
    """connect(company_id, "slack", "trello", ...): the company's connections to the fakes, one per provider."""

    def make(company_id: int, *providers: str) -> None:
        values = fakes.connection_values()
        with session_scope() as s:
            for provider in providers:
                settings, secrets = values[provider]
                save_connection(s, company_id, provider, provider, settings, secrets)

    return make


def sync_mailbox(company_id: int, user_id: int, provider: str, settings: dict[str, Any], secrets: dict[str, Any],
                 address: str) -> None:
    """Give a user a synced mailbox: a connection and the user's pointer to it with the address."""
    with session_scope() as s:
        row = save_connection(s, company_id, provider, f"mailbox of user {user_id}", settings, secrets)
        user = s.get(User, user_id)
        assert user is not None
        user.mailbox = {"connection_id": row.id, "address": address}
        s.add(user)


@pytest.fixture
def smtp_mailbox(smtp: FakeSmtp) -> Callable[[int, int], None]:
    """smtp_mailbox(company_id, user_id): the user sends through the fake SMTP server (STARTTLS + login)."""

    def make(company_id: int, user_id: int) -> None:
        sync_mailbox(company_id, user_id, "smtp",
                     {"host": "localhost", "port": smtp.port, "security": "starttls", "username": smtp.username},
                     {"password": smtp.password}, smtp.username)

    return make
