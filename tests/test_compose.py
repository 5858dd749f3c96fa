"""docker-compose.yml stays valid without Docker: references resolve, and the engine's settings it passes exist."""

from __future__ import annotations

from pathlib import Path

import yaml

from models.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_ONLY = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgresql", "temporal", "temporal-ui", "migrate", "worker"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").exists()
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose.get("volumes", {}), volume


def test_every_engine_variable_in_the_env_file_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    names = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
             if line and not line.startswith("#")}
    assert names - COMPOSE_ONLY <= fields, names - COMPOSE_ONLY - fields
    assert {"DATABASE_URL", "TEMPORAL_ADDRESS"} <= names
