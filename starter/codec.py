"""Payload encryption: an AES-256-GCM PayloadCodec over a key ring (the key id travels in each payload's metadata,
every key of the ring decrypts, one encrypts), and the project's data converter built on it."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from models.settings import Settings, get_settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
DEV_KEYS_FILE = "encryption-keys.json"


class KeyRingError(ValueError):
    """The key ring is misconfigured, or a payload needs a key it does not hold."""


class KeyRing:
    """AES-256 keys by id; `active` encrypts, every key decrypts (old keys stay until their runs are gone)."""

    def __init__(self, keys: Mapping[str, bytes], active: str, *, source: str = "ENCRYPTION_KEYS"):
        if not keys:
            raise KeyRingError("no encryption key: set ENCRYPTION_KEYS")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise KeyRingError(f"encryption key {key_id!r} is {len(key)} bytes; AES-256 needs 32")
        if active not in keys:
            raise KeyRingError(f"ENCRYPTION_KEY_ID {active!r} is not one of the keys ({', '.join(keys)})")
        self.ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active = active
        self.source = source

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> KeyRing:
        settings = settings or get_settings()
        source = "ENCRYPTION_KEYS"
        encoded = {key_id: secret.get_secret_value() for key_id, secret in settings.encryption_keys.items()}
        if not encoded:
            path = settings.data_dir / DEV_KEYS_FILE
            encoded, source = dev_keys(path), f"development key in {path}"
        try:
            keys = {key_id: base64.b64decode(value, validate=True) for key_id, value in encoded.items()}
        except ValueError as err:
            raise KeyRingError(f"ENCRYPTION_KEYS: a key is not valid base64 ({err})") from None
        active = settings.encryption_key_id
        if not active:
            if len(keys) != 1:
                raise KeyRingError("ENCRYPTION_KEYS holds several keys: set ENCRYPTION_KEY_ID to the one that encrypts")
            [active] = keys
        return cls(keys, active, source=source)


def new_key() -> str:
    """A fresh key, as ENCRYPTION_KEYS holds it (base64 of 32 random bytes)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def dev_keys(path: Path) -> dict[str, str]:
    """The single machine's key ring: generated once, then read back, so `make run` needs no configuration.

    Created with a hard link from a temporary file, so processes starting together all end up with the same key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps({"dev": new_key()}))
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    keys: dict[str, str] = json.loads(path.read_text())
    return keys


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the active key; decrypts only payloads marked encrypted, so histories
    written before encryption (or by a worker not yet upgraded) stay readable."""

    def __init__(self, ring: KeyRing):
        self.ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self.ring.ciphers[self.ring.active]
        key_id = self.ring.active.encode()
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            # The key id is authenticated data: a payload cannot be passed off as encrypted with another key.
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id)
            encoded.append(Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed))
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"")
            cipher = self.ring.ciphers.get(key_id.decode())
            if cipher is None:
                raise KeyRingError(f"payload encrypted with key {key_id.decode()!r}, which is not in ENCRYPTION_KEYS "
                                f"(keys held: {', '.join(self.ring.ciphers)})")
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id)
            decoded.append(Payload.FromString(plain))
        return decoded


def data_converter(ring: KeyRing | None = None) -> DataConverter:
    """Pydantic payloads, encrypted; failure messages and stack traces move into the encrypted attributes too,
    since they may quote record data."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(ring or KeyRing.from_settings()),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
