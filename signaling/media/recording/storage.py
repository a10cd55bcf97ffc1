"""Where closed segments are kept: a local folder, or S3-compatible storage with Object Lock.

Every method is blocking and is called from a worker thread (the call's writer
thread, or ``asyncio.to_thread``), never on the event loop. Keys look like
``CALL_ID/party-kind-00003-SEGMENTID.cbseg``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol


class StorageError(OSError):
    """The storage refused or failed an operation."""


class RecordingStorage(Protocol):
    def put(self, key: str, source: Path, retain_until: datetime) -> None:
        """Store the file at ``source`` under ``key`` durably (then the caller removes it)."""

    def get(self, key: str) -> bytes: ...

    def keys(self, prefix: str) -> list[str]:
        """Every stored key under ``prefix`` (a call id followed by ``/``)."""

    def delete(self, key: str) -> None: ...

    def set_legal_hold(self, key: str, hold: bool) -> None:
        """Where the storage has its own legal hold, set or release it on ``key``."""

    def check(self) -> None:
        """Raise :class:`StorageError` if nothing could be written now."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    """A folder on the node (default ``var/recordings``): files fsynced, then renamed in."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError(f"key outside the storage: {key!r}")
        return path

    def put(self, key: str, source: Path, retain_until: datetime) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(".incoming")
            with source.open("rb") as src, temporary.open("wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(temporary, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise StorageError(f"cannot store {key}: {exc.strerror or exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(key) from exc

    def keys(self, prefix: str) -> list[str]:
        folder = self._path(prefix.rstrip("/") or ".")
        if not folder.is_dir():
            return []
        return sorted(
            f"{prefix.rstrip('/')}/{p.name}" for p in folder.iterdir() if p.suffix == ".cbseg"
        )

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return

    def set_legal_hold(self, key: str, hold: bool) -> None:
        return None  # a local folder has no lock of its own: the index's hold governs

    def check(self) -> None:
        probe = self.root / f".probe-{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"recording storage is not writable: {exc.strerror or exc}") from exc


class S3Storage:
    """S3-compatible object storage; every object is locked in compliance mode until
    its retain-until date, so not even the bucket owner can delete it earlier.

    The bucket must have Object Lock enabled (it can only be enabled at creation).
    boto3 is synchronous: every call here runs in a worker thread.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def connect(
        cls, bucket: str, *, endpoint_url: str | None, region: str | None, prefix: str = ""
    ) -> S3Storage:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
        )
        return cls(client, bucket, prefix)

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def put(self, key: str, source: Path, retain_until: datetime) -> None:
        from botocore.exceptions import (  # type: ignore[import-untyped]
            BotoCoreError,
            ClientError,
        )

        try:
            with source.open("rb") as body:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=body,
                    ObjectLockMode="COMPLIANCE",
                    ObjectLockRetainUntilDate=retain_until,
                    ChecksumAlgorithm="SHA256",
                )
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageError(f"cannot store {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))[
                "Body"
            ].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise KeyError(key) from exc
            raise StorageError(f"cannot read {key}: {exc}") from exc
        return body

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for item in page.get("Contents", []):
                found.append(str(item["Key"])[len(self.prefix) :])
        return sorted(found)

    def delete(self, key: str) -> None:
        """Remove every version (Object Lock refuses while a version is retained)."""
        from botocore.exceptions import ClientError

        try:
            versions = self.client.list_object_versions(Bucket=self.bucket, Prefix=self._key(key))
            for item in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
                if item["Key"] == self._key(key):
                    self.client.delete_object(
                        Bucket=self.bucket, Key=item["Key"], VersionId=item["VersionId"]
                    )
        except ClientError as exc:
            raise StorageError(f"cannot delete {key}: {exc}") from exc

    def set_legal_hold(self, key: str, hold: bool) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object_legal_hold(
                Bucket=self.bucket,
                Key=self._key(key),
                LegalHold={"Status": "ON" if hold else "OFF"},
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot set the legal hold on {key}: {exc}") from exc

    def check(self) -> None:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
        )

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"recording bucket is not reachable: {exc}") from exc
