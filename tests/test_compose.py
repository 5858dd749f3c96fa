"""docker-compose.yml stays valid without Docker: references resolve, every setting it passes is one the engine
reads, every command is one the CLI has, and what operators rely on (codec endpoint, scaling, draining) holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.core import TyperGroup
from typer.main import get_command

from models.settings import Settings
from starter.cli import app
from worker import SHUTDOWN_GRACE

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_ONLY = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def engine_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def example_env() -> set[str]:
    return {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
            if line and not line.startswith("#")}


def test_compose_file_is_consistent(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgresql", "temporal", "temporal-ui", "codec-server", "migrate", "worker", "api"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").exists()
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose.get("volumes", {}), volume


def test_engine_services_pass_only_settings_and_run_cli_commands(compose: dict[str, Any]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    cli = get_command(app)
    assert isinstance(cli, TyperGroup)
    commands = set(cli.commands)
    for name, service in engine_services(compose).items():
        assert service["env_file"] == ".env", name
        assert set(service.get("environment", {})) <= fields, (name, set(service["environment"]) - fields)
        assert service["command"][0] in commands, f"{name} runs unknown command {service['command']}"


def test_every_variable_compose_reads_is_in_the_env_example(compose: dict[str, Any]) -> None:
    referenced = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    assert referenced <= example_env(), referenced - example_env()


def test_every_engine_variable_in_the_env_file_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    names = example_env()
    assert names - COMPOSE_ONLY <= fields, names - COMPOSE_ONLY - fields
    assert {"DATABASE_URL", "TEMPORAL_ADDRESS", "ENCRYPTION_KEYS"} <= names


def test_the_ui_reads_payloads_through_the_codec_server(compose: dict[str, Any]) -> None:
    services = compose["services"]
    endpoint = services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"]
    published = services["codec-server"]["ports"][0].split(":")[0]
    assert endpoint.rstrip("/}").endswith(f":{published}")
    assert services["codec-server"]["environment"]["CODEC_SERVER_ADDRESS"].endswith(f":{published}")


def test_workers_scale_and_drain(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "ports" not in worker  # a published host port would make `--scale worker=N` collide
    assert int(worker["stop_grace_period"].rstrip("s")) > SHUTDOWN_GRACE.total_seconds()
    assert worker["environment"]["METRICS_ADDRESS"].endswith(":9464") and "9464" in worker["expose"]


def test_the_env_example_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENCRYPTION_KEYS", "ENCRYPTION_KEY_ID", "DATABASE_URL", "TEMPORAL_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert list(settings.encryption_keys) == [settings.encryption_key_id] == ["2026-11"]
    assert settings.codec_auth_tokens == [] and settings.log_format == "json"
