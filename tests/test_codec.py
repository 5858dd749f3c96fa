"""The codec and the connection settings without a server: key ring rules, the development key, pass-through of
payloads written before encryption, and TLS / API key choices."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.service import TLSConfig

from models.settings import Settings
from starter.client import tls_config
from starter.codec import DEV_KEYS_FILE, KEY_ID, EncryptionCodec, KeyRing, KeyRingError, new_key

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"title": "Globex"}')


@pytest.fixture(autouse=True)
def no_keys_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' key ring is in the environment; these tests build Settings of their own."""
    monkeypatch.delenv("ENCRYPTION_KEYS")
    monkeypatch.delenv("ENCRYPTION_KEY_ID")


def test_without_configuration_a_development_key_is_generated_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = KeyRing.from_settings(settings)
    again = KeyRing.from_settings(settings)
    path = tmp_path / DEV_KEYS_FILE
    assert first.active == again.active == "dev" and first.source == f"development key in {path}"
    assert json.loads(path.read_text()) == {"dev": json.loads(path.read_text())["dev"]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_payloads_round_trip_and_old_plain_ones_pass_through() -> None:
    codec = EncryptionCodec(KeyRing({"k1": b"1" * 32}, "k1"))
    [sealed] = await codec.encode([PLAIN])
    assert sealed.metadata[KEY_ID] == b"k1" and b"Globex" not in sealed.data
    assert await codec.decode([sealed, PLAIN]) == [PLAIN, PLAIN]


async def test_an_unknown_or_swapped_key_is_refused() -> None:
    [sealed] = await EncryptionCodec(KeyRing({"k1": b"1" * 32}, "k1")).encode([PLAIN])
    with pytest.raises(KeyRingError, match="key 'k1', which is not in ENCRYPTION_KEYS"):
        await EncryptionCodec(KeyRing({"k2": b"2" * 32}, "k2")).decode([sealed])
    with pytest.raises(InvalidTag):  # same id, another key: authenticated encryption notices
        await EncryptionCodec(KeyRing({"k1": b"x" * 32}, "k1")).decode([sealed])


def test_key_ring_settings_are_checked() -> None:
    two = {"a": SecretStr(new_key()), "b": SecretStr(new_key())}
    with pytest.raises(KeyRingError, match="set ENCRYPTION_KEY_ID"):
        KeyRing.from_settings(Settings(encryption_keys=two))
    with pytest.raises(KeyRingError, match="'c' is not one of the keys"):
        KeyRing.from_settings(Settings(encryption_keys=two, encryption_key_id="c"))
    assert KeyRing.from_settings(Settings(encryption_keys=two, encryption_key_id="b")).active == "b"


def test_tls_follows_the_settings(tmp_path: Path) -> None:
    assert tls_config(Settings(temporal_api_key=SecretStr(""))) is False
    assert tls_config(Settings(temporal_api_key=SecretStr("cloud-key"))) is True  # Temporal Cloud: TLS always
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    mtls = tls_config(Settings(temporal_tls_cert=cert, temporal_tls_key=key, temporal_tls_server_name="t.example"))
    assert isinstance(mtls, TLSConfig)
    assert (mtls.client_cert, mtls.client_private_key, mtls.domain) == (b"CERT", b"KEY", "t.example")
    with pytest.raises(ValueError, match="go together"):
        tls_config(Settings(temporal_tls_cert=cert))
