"""Payload encryption on the real dev server: record data never reaches Temporal's history in clear, the codec
server decodes it for operators who hold a token, and a key rotation keeps old runs readable and running."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client

from models.settings import get_settings
from starter.codec import KEY_ID, KeyRing, data_converter
from starter.codec_server import create_app, server
from starter.intake import emit
from tests.helpers import create_automation, event, outcome, run_status, running_worker, wait_for
from worker import build_workers

pytestmark = pytest.mark.integration

SECRETS = ["Globex Secret Merger", "ceo@globex.example", "987654321"]
UI_ORIGIN = "http://localhost:8233"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def codec_server(ring: KeyRing, tokens: list[str]) -> AsyncIterator[str]:
    """The real codec server (uvicorn) on a free port; yields its URL."""
    settings = get_settings().model_copy(update={"codec_auth_tokens": [SecretStr(t) for t in tokens]})
    address = f"127.0.0.1:{free_port()}"
    running = server(create_app(settings, ring), address)
    task = asyncio.create_task(running.serve())
    await wait_for(lambda: running.started, timeout=10, interval=0.02)
    try:
        yield f"http://{address}"
    finally:
        running.should_exit = True
        await task


async def http(method: str, url: str, body: bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    def call() -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    return await asyncio.to_thread(call)


async def decode(url: str, payloads: list[Payload], token: str | None = "ops-token") -> tuple[int, Any]:
    """What the UI does: POST the payloads (protobuf JSON) to /decode."""
    headers = {"Content-Type": "application/json", "X-Namespace": "default", "Origin": UI_ORIGIN}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, _, body = await http("POST", f"{url}/decode", json_format.MessageToJson(Payloads(payloads=payloads))
                                 .encode(), headers)
    return status, json.loads(body)


async def raw_history(client: Client, workflow_id: str) -> Any:
    """The history exactly as the server stores it: no converter, no codec."""
    return await client.workflow_service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))


def workflow_input(history: Any) -> list[Payload]:
    return list(history.history.events[0].workflow_execution_started_event_attributes.input.payloads)


def deal_event(company_id: int) -> dict[str, Any]:
    return event(company_id, current={"title": SECRETS[0], "email": SECRETS[1], "value": int(SECRETS[2])})


async def test_record_data_is_encrypted_in_history_and_the_codec_server_decodes_it(dev_env: Any,
                                                                                   company_factory: Any) -> None:
    client: Client = dev_env.client
    c = company_factory()
    create_automation(c.admin_id, {
        "name": "Encrypted", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [{"action": "activity.create", "params": {"subject": "Call about {{deal.title}}"}},
                  {"action": "activity.create", "params": {"subject": "Call {{person.name}}"}}]})
    async with running_worker(client):
        [firing] = await emit(client, deal_event(c.id))
        result = await outcome(client, firing.workflow_id)
    assert result.status == "failed"  # the second step has no person: its failure is in the history too

    history = await raw_history(client, firing.workflow_id)
    stored = history.SerializeToString() + json_format.MessageToJson(history).encode()
    for secret in SECRETS:
        assert secret.encode() not in stored, f"{secret!r} is in the history in clear"
    assert b"Call about" not in stored  # rendered step params and outputs are payloads too
    payloads = workflow_input(history)
    assert payloads[0].metadata["encoding"] == b"binary/encrypted"
    assert payloads[0].metadata[KEY_ID] == b"test-1"
    failures = [e.marker_recorded_event_attributes.failure for e in history.history.events
                if e.marker_recorded_event_attributes.HasField("failure")]
    assert failures and all(f.message == "Encoded failure" for f in failures)  # messages may quote record data
    # Search attributes stay readable (ids and enums only): operators still find the run by them.
    attributes = history.history.events[0].workflow_execution_started_event_attributes.search_attributes
    assert json.loads(attributes.indexed_fields["CrmCompanyId"].data) == c.id
    assert json.loads(attributes.indexed_fields["CrmEntity"].data) == "deal"

    async with codec_server(KeyRing.from_settings(), tokens=["ops-token"]) as url:
        status, decoded = await decode(url, payloads, token=None)
        assert status == 401
        status, decoded = await decode(url, payloads, token="wrong")
        assert status == 401
        status, decoded = await decode(url, payloads)
        assert status == 200
        run_input = json.loads(base64.b64decode(decoded["payloads"][0]["data"]))
        assert run_input["event"]["current"]["title"] == SECRETS[0]
        assert base64.b64decode(decoded["payloads"][0]["metadata"]["encoding"]) == b"json/plain"

        # The UI calls from the browser: the preflight for its origin and headers is answered.
        status, headers, _ = await http("OPTIONS", f"{url}/decode", headers={
            "Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
        assert status == 200 and headers["access-control-allow-origin"] == UI_ORIGIN
        status, _, _ = await http("OPTIONS", f"{url}/decode", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert status == 400

        # /encode is the inverse (the UI uses it to send signals): its output decodes back.
        plain = Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')])
        status, _, body = await http("POST", f"{url}/encode", json_format.MessageToJson(plain).encode(),
                                     {"Authorization": "Bearer ops-token", "Content-Type": "application/json"})
        assert status == 200
        encoded = json_format.Parse(body, Payloads()).payloads
        assert encoded[0].metadata["encoding"] == b"binary/encrypted" and b"hello" not in encoded[0].data
        status, decoded = await decode(url, list(encoded))
        assert base64.b64decode(decoded["payloads"][0]["data"]) == b'"hello"'


def ring(*key_ids: str, active: str) -> KeyRing:
    # Deterministic keys per id, so two rings holding "k1" hold the same key.
    return KeyRing({key_id: key_id.encode().ljust(32, b"-") for key_id in key_ids}, active)


@asynccontextmanager
async def workers_with(client: Client, queue: str) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for w in build_workers(client, queue):
            await stack.enter_async_context(w)
        yield


async def test_a_key_rotation_keeps_old_runs_readable_and_runs_in_flight_going(dev_env: Any,
                                                                                company_factory: Any) -> None:
    service = dev_env.client.service_client
    before = Client(service, namespace=dev_env.client.namespace, data_converter=data_converter(ring("k1", active="k1")))
    after = Client(service, namespace=dev_env.client.namespace,
                   data_converter=data_converter(ring("k1", "k2", active="k2")))
    c = company_factory()
    create_automation(c.admin_id, {
        "name": "Rotation", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [{"action": "activity.create", "params": {"subject": "before {{deal.title}}"}},
                  {"delay": {"for": "2 seconds"}},
                  {"action": "activity.create", "params": {"subject": "after {{deal.title}}"}}]})
    settings = get_settings()
    queue, previous = f"rotation-{c.id}", settings.task_queue
    settings.task_queue = queue
    try:
        async with workers_with(before, queue):  # every worker still on k1
            [old] = await emit(before, deal_event(c.id))
            await wait_for(lambda: run_status(old.workflow_id) == "waiting", timeout=30)
        # Rolled out: workers hold k1 and k2 and encrypt with k2. The run in flight goes on.
        async with workers_with(after, queue):
            [new] = await emit(after, deal_event(c.id))
            assert (await outcome(after, old.workflow_id)).status == "succeeded"
            assert (await outcome(after, new.workflow_id)).status == "succeeded"
    finally:
        settings.task_queue = previous

    old_history, new_history = (await raw_history(after, old.workflow_id), await raw_history(after, new.workflow_id))
    used = {p.metadata[KEY_ID] for e in old_history.history.events
            for details in e.marker_recorded_event_attributes.details.values()
            for p in details.payloads if KEY_ID in p.metadata}
    assert used == {b"k1", b"k2"}  # the old run's history holds payloads under both keys
    async with codec_server(ring("k1", "k2", active="k2"), tokens=["ops-token"]) as url:
        for history in (old_history, new_history):
            status, decoded = await decode(url, workflow_input(history))
            assert status == 200
            assert json.loads(base64.b64decode(decoded["payloads"][0]["data"]))["event"]["current"]["title"] == \
                SECRETS[0]
    # Dropping k1 too early makes the old run unreadable: keep a key until its runs are past retention.
    async with codec_server(ring("k2", active="k2"), tokens=["ops-token"]) as url:
        status, problem = await decode(url, workflow_input(old_history))
        assert status == 422 and "'k1'" in problem["detail"]
