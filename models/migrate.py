"""Apply the Alembic migrations (`automations migrate`, and at start-up of `automations dev`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from models.db import engine_for

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    # One migrator at a time: workers starting together must not race on the schema.
    with engine_for(url).connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(724001)"))
        try:
            command.upgrade(alembic_config(url), "head")
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(724001)"))
            conn.commit()
