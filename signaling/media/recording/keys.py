"""Recording keys: a random AES-256 key per recording, wrapped with the bank's public key.

The server holds only the public key. Each recording (and each restart of a
recording after a crash) gets a fresh 32-byte key, used in memory while the
recording runs and stored only wrapped, so only the holder of the private key
can read the media back. Two wrapping schemes, chosen by the key's type:

- RSA (2048 bits or more): RSA-OAEP with SHA-256;
- X25519: an ephemeral X25519 agreement, HKDF-SHA256, then AES-256-GCM (ECIES).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
_X25519_INFO = b"cloudbranch recording key wrap v1"


class RecordingKeyError(ValueError):
    """A recording key could not be loaded, wrapped or unwrapped."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _pem_bytes(value: str) -> bytes:
    """A PEM given inline (it starts with ``-----BEGIN``) or as a file path."""
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise RecordingKeyError(f"cannot read the key file: {exc.strerror}") from exc


@dataclass(frozen=True)
class PublicKey:
    """The bank's recording public key; wraps per-recording keys."""

    key: rsa.RSAPublicKey | x25519.X25519PublicKey

    @classmethod
    def load(cls, value: str) -> PublicKey:
        try:
            loaded = serialization.load_pem_public_key(_pem_bytes(value))
        except ValueError as exc:
            raise RecordingKeyError("the recording public key is not a PEM public key") from exc
        if isinstance(loaded, rsa.RSAPublicKey):
            if loaded.key_size < 2048:
                raise RecordingKeyError("an RSA recording key needs at least 2048 bits")
            return cls(loaded)
        if isinstance(loaded, x25519.X25519PublicKey):
            return cls(loaded)
        raise RecordingKeyError("the recording public key must be RSA or X25519")

    @property
    def fingerprint(self) -> str:
        der = self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()[:32]

    def wrap(self, recording_key: bytes) -> dict[str, Any]:
        if isinstance(self.key, rsa.RSAPublicKey):
            wrapped = self.key.encrypt(recording_key, _oaep())
            return {"alg": "RSA-OAEP-256", "kid": self.fingerprint, "wrapped": _b64(wrapped)}
        ephemeral = x25519.X25519PrivateKey.generate()
        epk = ephemeral.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kek = _x25519_kek(ephemeral.exchange(self.key), epk)
        wrapped = AESGCM(kek).encrypt(b"\x00" * 12, recording_key, epk)
        return {
            "alg": "X25519-HKDF-SHA256-A256GCM",
            "kid": self.fingerprint,
            "epk": _b64(epk),
            "wrapped": _b64(wrapped),
        }


@dataclass(frozen=True)
class PrivateKey:
    """The bank's private key: only the offline export tool ever loads it."""

    key: rsa.RSAPrivateKey | x25519.X25519PrivateKey

    @classmethod
    def load(cls, value: str, password: bytes | None = None) -> PrivateKey:
        try:
            loaded = serialization.load_pem_private_key(_pem_bytes(value), password=password)
        except (ValueError, TypeError) as exc:
            raise RecordingKeyError("the private key is not a readable PEM private key") from exc
        if isinstance(loaded, rsa.RSAPrivateKey | x25519.X25519PrivateKey):
            return cls(loaded)
        raise RecordingKeyError("the private key must be RSA or X25519")

    def unwrap(self, wrapped: dict[str, Any]) -> bytes:
        try:
            if wrapped.get("alg") == "RSA-OAEP-256" and isinstance(self.key, rsa.RSAPrivateKey):
                key = self.key.decrypt(_unb64(wrapped["wrapped"]), _oaep())
            elif wrapped.get("alg") == "X25519-HKDF-SHA256-A256GCM" and isinstance(
                self.key, x25519.X25519PrivateKey
            ):
                epk = _unb64(wrapped["epk"])
                shared = self.key.exchange(x25519.X25519PublicKey.from_public_bytes(epk))
                key = AESGCM(_x25519_kek(shared, epk)).decrypt(
                    b"\x00" * 12, _unb64(wrapped["wrapped"]), epk
                )
            else:
                raise RecordingKeyError(f"this private key cannot unwrap {wrapped.get('alg')!r}")
        except RecordingKeyError:
            raise
        except Exception as exc:  # cryptography raises several types for a wrong key
            raise RecordingKeyError(
                "the recording key does not unwrap with this private key"
            ) from exc
        if len(key) != KEY_BYTES:
            raise RecordingKeyError("the unwrapped recording key has the wrong length")
        return key


def new_recording_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _x25519_kek(shared: bytes, epk: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk, info=_X25519_INFO).derive(shared)
