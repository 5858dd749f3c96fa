"""The one settings object: everything configurable comes from the environment (or `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Plans on which automations are available, with their cap of *active* automations per company.
DEFAULT_PLAN_LIMITS: dict[str, int] = {
    "advanced": 50,
    "professional": 150,
    "power": 250,
    "enterprise": 250,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    #: PostgreSQL URL (SQLAlchemy form, psycopg 3). Empty: `automations dev` starts embedded PostgreSQL.
    database_url: str = ""
    #: host:port of the Temporal frontend. Empty: `automations dev` starts the Temporal dev server.
    temporal_address: str = ""
    temporal_namespace: str = "default"
    #: Temporal Cloud API key (TLS is then on).
    temporal_api_key: SecretStr = SecretStr("")
    #: TLS with the system's root CAs, for a server behind a TLS endpoint (implied by the options below).
    temporal_tls: bool = False
    #: mTLS: client certificate and key files (PEM), e.g. a Temporal Cloud namespace's or a self-hosted cluster's.
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    #: CA (PEM) of a self-hosted server's certificate, when it is not signed by a public CA.
    temporal_tls_ca: Path | None = None
    #: Name the server's certificate is checked against, when it differs from the address's host.
    temporal_tls_server_name: str = ""
    temporal_ui_url: str = "http://localhost:8233"
    #: The run workflow's queue; external action families poll `<task_queue>-<family>`.
    task_queue: str = "crm-automations"
    #: Payload encryption keys, JSON `{"key id": "base64 of 32 bytes"}`; all of them decrypt, one encrypts.
    #: Empty: a development key generated once into DATA_DIR (never for more than one machine).
    encryption_keys: dict[str, SecretStr] = Field(default_factory=dict)
    #: The key new payloads are encrypted with (may be omitted when ENCRYPTION_KEYS holds one key).
    encryption_key_id: str = ""
    #: host:port the codec server listens on (`automations codec-server`).
    codec_server_address: str = "127.0.0.1:8081"
    #: The codec server's URL as browsers and `automations doctor` reach it (the UI's codec endpoint).
    codec_server_url: str = "http://localhost:8081"
    #: Bearer tokens the codec server accepts, JSON list. Empty: it answers anyone who can reach it.
    codec_auth_tokens: list[SecretStr] = Field(default_factory=list)
    #: Origins of the Temporal UI allowed to call the codec server from the browser.
    codec_cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8233", "http://localhost:8080"])
    #: host:port of the Prometheus endpoint (SDK and engine metrics, path /metrics). Empty: none.
    metrics_address: str = ""
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    #: Index runs by our search attributes (off only for servers without them, e.g. the time-skipping test server).
    search_attributes: bool = True
    #: Where embedded PostgreSQL and the dev server keep their data.
    data_dir: Path = Path(".data")
    #: A chain of automation-caused events deeper than this is cut (S4.7).
    max_chain_depth: int = 5
    #: Run history older than this many days is purged.
    run_retention_days: int = 15
    plan_limits: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_PLAN_LIMITS))
    #: Longest allowed delay step, in days.
    max_delay_days: int = 90
    #: Extra modules holding action types, imported after the built-in `activities` package.
    action_modules: list[str] = Field(default_factory=list)
    #: Seconds between outbox polls when no NOTIFY arrives.
    outbox_poll_seconds: float = 1.0
    #: Fernet key(s) encrypting connection secrets at rest, comma-separated: the first encrypts, all decrypt
    #: (rotation). Empty: the CLI uses `<data_dir>/connections.key` with the embedded PostgreSQL.
    connections_key: SecretStr = SecretStr("")
    #: CA bundle (PEM) trusted for calls to integrations instead of certifi's, e.g. with a TLS-inspecting proxy.
    integrations_ca_bundle: Path | None = None
    #: Every call to an integration gives up after this many seconds (then Temporal retries it).
    integrations_timeout_seconds: float = 10.0
    #: Where `automations dev` and `automations api` serve the HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    #: The API the CLI's commands talk to, and the token they send. Empty: in process, straight on the database.
    api_url: str = ""
    api_token: str = ""


@lru_cache
def get_settings() -> Settings:
    return Settings()
