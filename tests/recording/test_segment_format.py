"""The stored segment format and the key wrapping, on bytes (unit tier)."""

from __future__ import annotations

import os

import pytest

from signaling.media.recording.keys import (
    PrivateKey,
    PublicKey,
    RecordingKeyError,
    new_recording_key,
)
from signaling.media.recording.segment import (
    SegmentFormatError,
    SegmentSealer,
    encode_header,
    open_segment,
    salvage,
)
from tests.recording.support import KeyPair


def _segment(key: bytes | None, chunks: list[bytes], final: bool = True) -> bytes:
    header = encode_header({"encryption": "AES-256-GCM" if key else "none", "segment_id": "s1"})
    sealer = SegmentSealer(header, key)
    body = b"".join(
        sealer.seal(i, c, final=final and i == len(chunks) - 1, end_ms=i * 1000, frames=i)
        for i, c in enumerate(chunks)
    )
    return header + body


def test_sealed_chunks_round_trip_and_hide_the_plaintext() -> None:
    key = new_recording_key()
    chunks = [b"cluster one " * 50, b"cluster two " * 50, b"trailer"]
    data = _segment(key, chunks)
    assert b"cluster" not in data
    assert open_segment(data, key)[1] == b"".join(chunks)
    with pytest.raises(SegmentFormatError):
        open_segment(data, os.urandom(32))
    with pytest.raises(SegmentFormatError):
        open_segment(data, None)


def test_a_torn_tail_loses_only_the_last_chunk() -> None:
    key = new_recording_key()
    whole = _segment(key, [b"a" * 100, b"b" * 100, b"c" * 100], final=False)
    torn = whole[:-10]
    found = salvage(torn)
    assert (found.chunks, found.complete, found.frames) == (2, False, 1)
    assert open_segment(torn[: found.keep_bytes], key)[1] == b"a" * 100 + b"b" * 100
    assert salvage(_segment(key, [b"x", b"y"])).complete


def test_chunks_cannot_be_swapped_or_moved() -> None:
    key = new_recording_key()
    one = _segment(key, [b"a" * 64, b"b" * 64])
    header_len = len(encode_header({"encryption": "AES-256-GCM", "segment_id": "s1"}))
    size = (len(one) - header_len) // 2
    first, second = one[header_len : header_len + size], one[header_len + size :]
    # Same length chunks in the other order: the indices no longer match the positions.
    assert open_segment(one[:header_len] + second + first, key)[1] == b""
    other = encode_header({"encryption": "AES-256-GCM", "segment_id": "s2"})
    with pytest.raises(SegmentFormatError):
        open_segment(other + first + second, key)  # a chunk from another segment


def test_clear_segments_in_development() -> None:
    data = _segment(None, [b"plain"])
    assert open_segment(data, None)[1] == b"plain"


@pytest.mark.parametrize("pair", ["rsa_keys", "x25519_keys"])
def test_recording_keys_wrap_for_the_bank_only(pair: str, request: pytest.FixtureRequest) -> None:
    keys: KeyPair = request.getfixturevalue(pair)
    public = PublicKey.load(keys.public_pem)
    secret = new_recording_key()
    wrapped = public.wrap(secret)
    assert secret.hex() not in str(wrapped)
    assert PrivateKey.load(str(keys.private_path)).unwrap(wrapped) == secret
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa, x25519

    stranger = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if pair == "rsa_keys"
        else x25519.X25519PrivateKey.generate()
    )
    pem = stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(RecordingKeyError):
        PrivateKey.load(pem).unwrap(wrapped)


def test_a_weak_or_unreadable_public_key_is_refused() -> None:
    with pytest.raises(RecordingKeyError):
        PublicKey.load("/nonexistent/key.pem")
    with pytest.raises(RecordingKeyError):
        PublicKey.load("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
