"""The one Temporal client factory: address, namespace, TLS or API key, payload encryption and metrics, all from
the settings."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from models.settings import Settings, get_settings
from starter.codec import data_converter
from workflows.run import FIRST_STEP_LATENCY_METRIC

#: The event-to-first-step histogram's buckets (seconds): from sub-second pick-up to an hour-long backlog.
LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]


def tls_config(settings: Settings) -> TLSConfig | bool:
    """False (plain gRPC), True (system roots), or the mTLS files; an API key implies TLS (Temporal Cloud)."""
    files = (settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca)
    if not any(files) and not settings.temporal_tls_server_name:
        return settings.temporal_tls or bool(settings.temporal_api_key.get_secret_value())
    if bool(settings.temporal_tls_cert) != bool(settings.temporal_tls_key):
        raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (mTLS needs both)")
    cert, key, ca = (path.read_bytes() if path else None for path in files)
    return TLSConfig(client_cert=cert, client_private_key=key, server_root_ca_cert=ca,
                     domain=settings.temporal_tls_server_name or None)


@lru_cache
def metrics_runtime(bind_address: str) -> Runtime:
    """One runtime per process serving Prometheus metrics: the SDK's and ours (workflow and activity meters)."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=bind_address, counters_total_suffix=True, durations_as_seconds=True,
        histogram_bucket_overrides={FIRST_STEP_LATENCY_METRIC: LATENCY_BUCKETS})))


async def connect(address: str | None = None, namespace: str | None = None, *,
                  converter: DataConverter | None = None) -> Client:
    """A client as configured; `converter` replaces the encrypting one only where no payload is read or written
    (`automations doctor` checks connectivity even when the keys are wrong)."""
    settings = get_settings()
    address = address or settings.temporal_address
    if not address:
        raise RuntimeError("TEMPORAL_ADDRESS is not set (automations dev starts a dev server and sets it)")
    return await Client.connect(
        address, namespace=namespace or settings.temporal_namespace, data_converter=converter or data_converter(),
        tls=tls_config(settings), api_key=settings.temporal_api_key.get_secret_value() or None,
        runtime=metrics_runtime(settings.metrics_address) if settings.metrics_address else None,
        connect_timeout=timedelta(seconds=10))
