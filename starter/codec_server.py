"""The codec server: `POST /encode` and `/decode` with the workers' key ring, so the Temporal UI and CLI show
encrypted payloads in clear to operators allowed to read them (bearer tokens; CORS for the UI's origins)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence

import uvicorn
from cryptography.exceptions import InvalidTag
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from models.settings import Settings, get_settings
from starter.codec import EncryptionCodec, KeyRing, KeyRingError

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, ring: KeyRing | None = None) -> FastAPI:
    settings = settings or get_settings()
    codec = EncryptionCodec(ring or KeyRing.from_settings(settings))
    tokens = [token.get_secret_value() for token in settings.codec_auth_tokens]
    if not tokens:
        log.warning("codec server: CODEC_AUTH_TOKENS is empty, anyone who reaches %s can decode payloads",
                    settings.codec_server_address)
    app = FastAPI(title="CRM automations codec server", docs_url=None, redoc_url=None, openapi_url=None)
    # The UI calls the codec server from the operator's browser: its origin must be allowed, with the headers
    # it sends (the namespace, and the user's access token when "pass access token" is on).
    app.add_middleware(CORSMiddleware, allow_origins=settings.codec_cors_origins, allow_methods=["POST"],
                       allow_headers=["Authorization", "Content-Type", "X-Namespace"], allow_credentials=True)

    def authorize(request: Request) -> None:
        if not tokens:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(given, token) for token in tokens):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    async def convert(request: Request,
                      transform: Callable[[Sequence[Payload]], Awaitable[list[Payload]]]) -> Response:
        try:
            payloads = json_format.Parse(await request.body(), Payloads()).payloads
        except json_format.ParseError as err:
            raise HTTPException(400, f"expected {{\"payloads\": [...]}}: {err}") from None
        try:
            result = Payloads(payloads=await transform(payloads))
        except KeyRingError as err:
            raise HTTPException(422, str(err)) from None
        except InvalidTag:
            raise HTTPException(422, "a payload does not decrypt with its key (tampered, or a different key "
                                     "under the same id)") from None
        return Response(json_format.MessageToJson(result), media_type="application/json")

    @app.post("/encode", dependencies=[Depends(authorize)])
    async def encode(request: Request) -> Response:
        return await convert(request, codec.encode)

    @app.post("/decode", dependencies=[Depends(authorize)])
    async def decode(request: Request) -> Response:
        return await convert(request, codec.decode)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "encrypting_with": codec.ring.active}

    return app


def server(app: FastAPI, address: str) -> uvicorn.Server:
    host, _, port = address.rpartition(":")
    # log_config=None: uvicorn logs through the process's logging set-up (text or JSON).
    return uvicorn.Server(uvicorn.Config(app, host=host or "127.0.0.1", port=int(port), log_config=None,
                                         access_log=False))


async def serve(stop: asyncio.Event, address: str | None = None) -> None:
    """Serve until `stop` is set (the dev stack runs it beside the worker; `codec-server` runs only this)."""
    codec_server = server(create_app(), address or get_settings().codec_server_address)
    serving = asyncio.create_task(codec_server.serve())
    await stop.wait()
    codec_server.should_exit = True
    await serving
