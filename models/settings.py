"""The one settings object: everything configurable comes from the environment (or `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
    temporal_ui_url: str = "http://localhost:8233"
    task_queue: str = "crm-automations"
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
    #: Where `automations dev` and `automations api` serve the HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    #: The API the CLI's commands talk to, and the token they send. Empty: in process, straight on the database.
    api_url: str = ""
    api_token: str = ""


@lru_cache
def get_settings() -> Settings:
    return Settings()
