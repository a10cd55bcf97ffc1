"""Many callers' reads of the moment served by a few batched reads.

A thousand apps reconnecting at once must not make a thousand round trips (nor
take a thousand pooled connections): each caller asks for one key, and the
keys waiting meanwhile are read together, up to ``batch`` per read, by at most
``readers`` reads at a time. A storm is served late, never refused; callers
asking for the same key share one answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from itertools import islice
from typing import Generic, TypeVar

from server.tasks import cancel_and_wait

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchedReads(Generic[K, V]):
    """``of(key)`` answered by ``read(keys)`` (which returns what it found, by key;
    a key it did not find is answered ``missing``)."""

    def __init__(
        self,
        read: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        missing: V,
        *,
        name: str,
        batch: int = 256,
        readers: int = 2,
        max_waiting: int = 20_000,
    ) -> None:
        self._read = read
        self._missing = missing
        self._name = name
        self._batch = batch
        self._max_readers = readers
        # key -> the read its callers wait for (one per key).
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._readers: set[asyncio.Task[None]] = set()
        # Bounds the callers waiting for a read; past it, a caller waits its turn.
        self._room = asyncio.Semaphore(max_waiting)

    async def of(self, key: K) -> V:
        async with self._room:
            future = self._waiting.get(key)
            if future is None:
                future = asyncio.get_running_loop().create_future()
                self._waiting[key] = future
                if len(self._readers) < self._max_readers:
                    self._readers.add(asyncio.create_task(self._read_waiting(), name=self._name))
            # Shielded: a caller that gives up (its socket closed) leaves the read
            # to the others waiting for it.
            return await asyncio.shield(future)

    async def _read_waiting(self) -> None:
        try:
            while self._waiting:
                keys = list(islice(self._waiting, self._batch))
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    found = await self._read(keys)
                except Exception as exc:
                    # Each caller answers its own error (a dependency down: for a
                    # hello, an ``error`` message; the socket stays open).
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:
                    for future in batch.values():
                        future.cancel()
                    raise
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(found.get(key, self._missing))
        finally:
            # Before this task ends, not in a done callback: a caller arriving in
            # between must see that a reader is free.
            task = asyncio.current_task()
            if task is not None:
                self._readers.discard(task)

    async def stop(self) -> None:
        """Stop the reads under way; callers still waiting are cancelled."""
        for task in list(self._readers):
            await cancel_and_wait(task)
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.cancel()
