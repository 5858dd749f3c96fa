"""The one Temporal client factory."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from models.settings import get_settings


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    settings = get_settings()
    address = address or settings.temporal_address
    if not address:
        raise RuntimeError("TEMPORAL_ADDRESS is not set (automations dev starts a dev server and sets it)")
    return await Client.connect(address, namespace=namespace or settings.temporal_namespace,
                                data_converter=pydantic_data_converter)
