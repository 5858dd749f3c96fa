"""`automations doctor`: checks each dependency the settings point at (PostgreSQL, Temporal, the encryption keys,
the codec server) and says plainly what is wrong and what to do about it."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Literal

import psycopg
from alembic.script import ScriptDirectory
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from models.settings import Settings
from starter.codec import EncryptionCodec, KeyRing, KeyRingError

Status = Literal["ok", "warning", "failed"]


@dataclass
class Check:
    name: str
    status: Status
    detail: str


def check_encryption(settings: Settings) -> Check:
    try:
        ring = KeyRing.from_settings(settings)
    except KeyRingError as err:
        return Check("Encryption keys", "failed", str(err))
    if not settings.encryption_keys:
        return Check("Encryption keys", "warning", f"{ring.source}: fine on one machine; wherever several share "
                                                   "the server, set the same ENCRYPTION_KEYS on every worker, "
                                                   "client and codec server")
    return Check("Encryption keys", "ok", f"encrypting with {ring.active!r}; decrypting {', '.join(ring.ciphers)}")


def check_database(settings: Settings) -> Check:
    if not settings.database_url:
        return Check("PostgreSQL", "warning", "DATABASE_URL is not set: the CLI and `automations dev` use the "
                                              f"embedded PostgreSQL in {settings.data_dir / 'postgres'}")
    from models.migrate import MIGRATIONS

    url = settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)  # psycopg wants libpq's form
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            try:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
    except psycopg.OperationalError as err:
        reason = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        return Check("PostgreSQL", "failed", f"cannot connect with DATABASE_URL: {reason}")
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    server = f"PostgreSQL {version[0] if version else '?'}"
    if row is None or row[0] != head:
        return Check("PostgreSQL", "failed", f"{server}, schema at {row[0] if row else 'nothing'}, code expects "
                                             f"{head}: run `automations migrate`")
    return Check("PostgreSQL", "ok", f"{server}, schema up to date ({head})")


async def check_temporal(settings: Settings) -> list[Check]:
    from starter.client import connect

    address = settings.temporal_address or "127.0.0.1:7233"
    namespace = settings.temporal_namespace
    try:
        # No payload crosses here: the plain converter lets this check run even when the keys are wrong.
        client = await asyncio.wait_for(connect(address, converter=pydantic_data_converter), timeout=15)
    except (OSError, ValueError) as err:  # unreadable TLS files, cert without key
        return [Check("Temporal", "failed", f"TLS settings: {err}")]
    except (RuntimeError, TimeoutError) as err:
        message = str(err)
        reason = ("connection refused" if "ConnectionRefused" in message else "timed out" if not message
                  else message.splitlines()[0][:300])
        return [Check("Temporal", "failed", f"cannot connect to {address} (TEMPORAL_ADDRESS): {reason}; is the "
                                            "server up, and do TLS and the API key match what it expects?")]
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return [Check("Temporal", "failed", f"{address} has no namespace {namespace!r} (TEMPORAL_NAMESPACE)")]
        return [Check("Temporal", "failed", f"{address}, namespace {namespace!r}: {err.message} "
                                            "(permissions of the API key or certificate?)")]
    checks = [Check("Temporal", "ok", f"{address}, namespace {namespace!r}")]
    checks.append(await _search_attributes(client))
    checks.append(await _workers(client, settings.task_queue))
    return checks


async def _search_attributes(client: Client) -> Check:
    from workflows.run import SEARCH_ATTRIBUTES

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))
    except RPCError as err:
        return Check("Search attributes", "warning", f"cannot list them ({err.message}); check in the UI that "
                                                     f"{', '.join(k.name for k in SEARCH_ATTRIBUTES)} exist")
    missing = [key.name for key in SEARCH_ATTRIBUTES if key.name not in listed.custom_attributes]
    if missing:
        return Check("Search attributes", "warning", f"missing {', '.join(missing)}: workers register them at "
                                                     "start-up; on Temporal Cloud add them once (README)")
    return Check("Search attributes", "ok", "all registered")


async def _workers(client: Client, queue: str) -> Check:
    described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    identities = sorted({p.identity for p in described.pollers})
    if not identities:
        return Check("Workers", "warning", f"no worker polls {queue!r} (TASK_QUEUE) right now: runs wait until one "
                                           "does (`automations worker`)")
    return Check("Workers", "ok", f"{len(identities)} polling {queue!r}: {', '.join(identities)}")


def check_codec_server(settings: Settings) -> Check:
    """A payload encrypted here must decode there: same keys, token accepted, reachable."""
    url = settings.codec_server_url.rstrip("/")
    try:
        ring = KeyRing.from_settings(settings)
    except KeyRingError:
        return Check("Codec server", "failed", "cannot check it without valid encryption keys")
    probe = Payload(metadata={"encoding": b"json/plain"}, data=b'"automations doctor"')
    sealed = asyncio.run(EncryptionCodec(ring).encode([probe]))
    headers = {"Content-Type": "application/json"}
    if settings.codec_auth_tokens:
        headers["Authorization"] = f"Bearer {settings.codec_auth_tokens[0].get_secret_value()}"
    request = urllib.request.Request(f"{url}/decode", method="POST", headers=headers,
                                     data=json_format.MessageToJson(Payloads(payloads=sealed)).encode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            decoded = json_format.Parse(response.read(), Payloads()).payloads
    except urllib.error.HTTPError as err:
        if err.code == 401:
            return Check("Codec server", "failed", f"{url} refused the token: put one it accepts first in "
                                                   "CODEC_AUTH_TOKENS")
        detail = json.loads(err.read() or b"{}").get("detail", err.reason)
        return Check("Codec server", "failed", f"{url} cannot decode this machine's payloads: {detail}")
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return Check("Codec server", "failed", f"{url} is not reachable ({reason}): is `automations codec-server` "
                                               "running, and CODEC_SERVER_URL right?")
    if list(decoded) != [probe]:
        return Check("Codec server", "failed", f"{url} answered, but not with the payload sent")
    return Check("Codec server", "ok", f"{url} decodes payloads encrypted with {ring.active!r}")


async def run_checks(settings: Settings) -> list[Check]:
    """Every check; the blocking ones in threads so they can wait for their timeouts side by side."""
    encryption = check_encryption(settings)
    database, temporal, codec = await asyncio.gather(
        asyncio.to_thread(check_database, settings), check_temporal(settings),
        asyncio.to_thread(check_codec_server, settings))
    return [encryption, database, *temporal, codec]
