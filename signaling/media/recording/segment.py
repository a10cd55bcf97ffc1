"""The stored segment format: a header, then framed, independently sealed chunks.

A segment file is written append-only while its Matroska bytes come out of the
muxer, so a crash tears at most the chunk being written::

    file   := MAGIC  u32 header_len  header_json  chunk*
    chunk  := u32 body_len  u32 chunk_index  u8 flags  u32 end_ms  u32 frames  body
    body   := AES-256-GCM(segment_key, nonce(chunk_index), plaintext,
                          aad = header_digest || chunk_index || flags || end_ms || frames)
              (or the plaintext itself for a development recording in the clear)

``flags`` bit 0 marks the last chunk: a file whose last chunk lacks it was cut
short. ``end_ms`` (media time since the segment's start) and ``frames`` (frames
so far) let a torn file be indexed without its key. Each segment's key and
nonce base come from the recording key through HKDF over the header (which
holds a random segment id), so no (key, nonce) pair ever repeats, and the AAD
binds every chunk to its segment and position: chunks
cannot be reordered, moved between segments, or have their final flag forged.
Salvage keeps the complete chunks of a torn file; Matroska read up to a cut
gives every frame before it.

Pure code: bytes in, bytes out, no files.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"CBSEG\x00\x01\n"
FINAL = 0x01
_HEAD = struct.Struct(">I")
_CHUNK = struct.Struct(">IIBII")
_TAG = 16
MAX_HEADER = 64 * 1024
MAX_CHUNK = 16 * 1024 * 1024


class SegmentFormatError(ValueError):
    """The bytes are not a segment, or a chunk does not open."""


def encode_header(header: dict[str, Any]) -> bytes:
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + _HEAD.pack(len(body)) + body


def parse_header(data: bytes) -> tuple[dict[str, Any], int]:
    """The header and the offset of the first chunk."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _HEAD.size:
        raise SegmentFormatError("not a recording segment")
    (length,) = _HEAD.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _HEAD.size
    if length > MAX_HEADER or start + length > len(data):
        raise SegmentFormatError("segment header is cut short")
    try:
        header = json.loads(data[start : start + length])
    except ValueError as exc:
        raise SegmentFormatError("segment header is not JSON") from exc
    if not isinstance(header, dict):
        raise SegmentFormatError("segment header is not an object")
    return header, start + length


class SegmentSealer:
    """Seals (or, without a key, frames in the clear) the chunks of one segment."""

    def __init__(self, header_bytes: bytes, recording_key: bytes | None) -> None:
        self.digest = hashlib.sha256(header_bytes).digest()
        self._aead: AESGCM | None = None
        self._iv = b""
        if recording_key is not None:
            material = HKDF(
                algorithm=hashes.SHA256(),
                length=44,
                salt=None,
                info=b"cloudbranch segment v1" + self.digest,
            ).derive(recording_key)
            self._aead = AESGCM(material[:32])
            self._iv = material[32:]

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    def _nonce(self, index: int) -> bytes:
        counter = index.to_bytes(12, "big")
        return bytes(a ^ b for a, b in zip(self._iv, counter, strict=True))

    def _aad(self, chunk_header: bytes) -> bytes:
        return self.digest + chunk_header[4:]

    def seal(self, index: int, plaintext: bytes, *, final: bool, end_ms: int, frames: int) -> bytes:
        flags = FINAL if final else 0
        size = len(plaintext) + (_TAG if self._aead is not None else 0)
        head = _CHUNK.pack(size, index, flags, end_ms, frames)
        if self._aead is None:
            return head + plaintext
        return head + self._aead.encrypt(self._nonce(index), plaintext, self._aad(head))

    def open(self, chunk: RawChunk) -> bytes:
        if self._aead is None:
            return chunk.body
        head = _CHUNK.pack(len(chunk.body), chunk.index, chunk.flags, chunk.end_ms, chunk.frames)
        try:
            return self._aead.decrypt(self._nonce(chunk.index), chunk.body, self._aad(head))
        except Exception as exc:  # InvalidTag
            raise SegmentFormatError(f"chunk {chunk.index} does not open with this key") from exc


@dataclass(frozen=True)
class RawChunk:
    index: int
    flags: int
    end_ms: int
    frames: int
    body: bytes
    end: int  # offset just past this chunk


def iter_chunks(data: bytes, offset: int) -> Iterator[RawChunk]:
    """Complete chunks from ``offset``; stops quietly at a torn tail."""
    expected = 0
    while offset + _CHUNK.size <= len(data):
        length, index, flags, end_ms, frames = _CHUNK.unpack_from(data, offset)
        start = offset + _CHUNK.size
        if length > MAX_CHUNK or start + length > len(data) or index != expected:
            return
        yield RawChunk(index, flags, end_ms, frames, data[start : start + length], start + length)
        offset = start + length
        expected += 1


@dataclass(frozen=True)
class Salvage:
    """How much of a (possibly torn) segment file is whole."""

    header: dict[str, Any]
    keep_bytes: int  # the length of the longest whole prefix
    chunks: int
    complete: bool  # ended with its final chunk
    end_ms: int  # media time covered by the whole chunks
    frames: int


def salvage(data: bytes) -> Salvage:
    """The whole prefix of a segment file: its header and complete chunks."""
    header, offset = parse_header(data)
    keep, chunks, complete, end_ms, frames = offset, 0, False, 0, 0
    for chunk in iter_chunks(data, offset):
        keep, chunks, end_ms, frames = chunk.end, chunks + 1, chunk.end_ms, chunk.frames
        if chunk.flags & FINAL:
            complete = True
            break
    return Salvage(header, keep, chunks, complete, end_ms, frames)


def open_segment(data: bytes, recording_key: bytes | None) -> tuple[dict[str, Any], bytes]:
    """The header and the plaintext Matroska bytes of a stored segment."""
    header, offset = parse_header(data)
    encrypted = header.get("encryption") != "none"
    if encrypted and recording_key is None:
        raise SegmentFormatError("this segment is encrypted; the recording key is needed")
    sealer = SegmentSealer(data[:offset], recording_key if encrypted else None)
    plain = bytearray()
    for chunk in iter_chunks(data, offset):
        plain += sealer.open(chunk)
        if chunk.flags & FINAL:
            break
    return header, bytes(plain)
