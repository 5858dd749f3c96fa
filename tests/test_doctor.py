"""`automations doctor` as an operator runs it: against running dependencies (the dev server, PostgreSQL, a worker,
the codec server), against stopped ones, and against running ones configured wrong."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest

from models.settings import get_settings
from starter.codec import KeyRing
from tests.helpers import ROOT, running_worker
from tests.test_encryption import codec_server, free_port

pytestmark = pytest.mark.integration


async def doctor(**env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starter.cli", "doctor", cwd=ROOT, env={**os.environ, "COLUMNS": "400", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


def row(output: str, check: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"│ {check} "))


async def test_doctor_against_running_dependencies(dev_env: Any) -> None:
    client = dev_env.client
    address = client.service_client.config.target_host
    async with codec_server(KeyRing.from_settings(), tokens=["ops-token"]) as url, running_worker(client):
        code, output = await doctor(DATABASE_URL=get_settings().database_url, TEMPORAL_ADDRESS=address,
                                    TASK_QUEUE=get_settings().task_queue, CODEC_SERVER_URL=url,
                                    CODEC_AUTH_TOKENS='["ops-token"]')
        assert code == 0, output
        assert "ok" in row(output, "Encryption keys") and "encrypting with 'test-1'" in output
        assert "schema up to date" in row(output, "PostgreSQL")
        assert f"{address}, namespace 'default'" in row(output, "Temporal")
        assert "all registered" in row(output, "Search attributes")
        assert "1 polling" in row(output, "Workers")
        assert "decodes payloads encrypted with 'test-1'" in row(output, "Codec server")

        # Running, but configured wrong: each says what is wrong.
        code, output = await doctor(DATABASE_URL=get_settings().database_url, TEMPORAL_ADDRESS=address,
                                    TEMPORAL_NAMESPACE="sales", CODEC_SERVER_URL=url, CODEC_AUTH_TOKENS='["old"]')
        assert code == 1
        assert f"{address} has no namespace 'sales' (TEMPORAL_NAMESPACE)" in row(output, "Temporal")
        assert "refused the token" in row(output, "Codec server")
    async with codec_server(KeyRing({"other": b"o" * 32}, "other"), tokens=[]) as url:
        code, output = await doctor(DATABASE_URL=get_settings().database_url, TEMPORAL_ADDRESS=address,
                                    CODEC_SERVER_URL=url)
        assert code == 1
        assert "cannot decode this machine's payloads: payload encrypted with key 'test-1'" in row(output,
                                                                                                   "Codec server")
        assert "no worker polls 'crm-automations'" in row(output, "Workers")


async def test_doctor_against_stopped_dependencies() -> None:
    closed = free_port()
    code, output = await doctor(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/automations",
                                TEMPORAL_ADDRESS=f"127.0.0.1:{closed}", CODEC_SERVER_URL=f"http://127.0.0.1:{closed}",
                                ENCRYPTION_KEYS='{"a": "bm90IDMyIGJ5dGVz"}')
    assert code == 1
    assert "Connection refused" in row(output, "PostgreSQL") and "FAILED" in row(output, "PostgreSQL")
    assert f"cannot connect to 127.0.0.1:{closed} (TEMPORAL_ADDRESS): connection refused" in row(output, "Temporal")
    assert "encryption key 'a' is 12 bytes; AES-256 needs 32" in row(output, "Encryption keys")
    assert "FAILED" in row(output, "Codec server")
