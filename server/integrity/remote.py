"""A server's copy of the integrity of calls analysed by media-node processes.

:class:`RemoteIntegrity` reads the calls' Redis streams (server/integrity/feed.py)
with one owned task and applies every entry, in order, to its own
:class:`~signaling.integrity.state.CallIntegrity` per call. The server's
:class:`~server.integrity.service.IntegrityService` then answers for those calls
as for its own node's: ``GET .../integrity``, the risk input, the liveness checks
(the samples are in the entries).

The desk's ``video.integrity`` for those calls is sent from here too, by every
server to the desks connected to it (``Hub.send_local``): each server reads every
entry, so each desk hears each change exactly once, from the server it is
connected to, and a server that was cut off from Redis reads on from where it
stopped. (The audit entry and the recording marker are written by the node
process, which saw the change happen: server/integrity/node.py.)

Recovery: nothing is delivered by pub/sub. A server that loses Redis retries with
backoff and resumes each stream from the last entry it applied; one that starts
late reads each active call's stream from its start (the stream keeps the last
``STREAM_MAXLEN`` entries).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.backoff import EqualJitterBackoff
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Role
from server.calls import repository as repo
from server.hub.hub import Hub
from server.tasks import cancel_and_wait
from signaling.integrity.state import CallIntegrity

from . import feed
from .service import integrity_message

log = structlog.get_logger(__name__)

READ_BLOCK_MS = 1000  # how long one XREAD waits for new entries
READ_COUNT = 500  # entries per stream per read
CALLS_EVERY_S = 1.0  # how often the list of analysed calls is read again
NOTICE_QUEUE = 256


@dataclass(frozen=True, slots=True)
class _Notice:
    call_id: str
    message: dict[str, Any]


class RemoteIntegrity:
    """The states of calls analysed by other processes, kept from their streams."""

    def __init__(
        self,
        redis: Redis,
        sessions: async_sessionmaker[AsyncSession],
        hub: Hub,
        *,
        block_ms: int = READ_BLOCK_MS,
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.hub = hub
        self.block_ms = block_ms
        self.states: dict[str, CallIntegrity] = {}
        self.applied = 0
        self.notices_lost = 0
        self._last_ids: dict[str, str] = {}
        self._forgotten: set[str] = set()
        self._calls: list[str] = []
        self._calls_read_at = 0.0
        self._notices: asyncio.Queue[_Notice] = asyncio.Queue(NOTICE_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self._backoff = EqualJitterBackoff(cap=2.0, base=0.1)

    # -- StateSource -----------------------------------------------------------------------
    def state(self, call_id: str) -> CallIntegrity | None:
        return self.states.get(call_id)

    def forget(self, call_id: str) -> None:
        """The call ended: no more reading of its stream here."""
        self.states.pop(call_id, None)
        self._last_ids.pop(call_id, None)
        self._forgotten.add(call_id)

    # -- reading -----------------------------------------------------------------------------
    async def read_once(self) -> int:
        """One read of every active call's stream; the number of entries applied."""
        now = time.time()
        if now - self._calls_read_at >= CALLS_EVERY_S or not self._calls:
            members = await self.redis.zrangebyscore(
                feed.CALLS_KEY, now - feed.ACTIVE_WINDOW_S, "+inf"
            )
            self._calls = [self._text(m) for m in members]
            self._calls_read_at = now
            active = set(self._calls)
            self._forgotten &= active  # ended calls that are quiet now
            for gone in [c for c in self.states if c not in active]:  # quiet for long: unknown
                self.states.pop(gone, None)
                self._last_ids.pop(gone, None)
        streams = {
            feed.stream_key(call_id): self._last_ids.get(call_id, "0-0")
            for call_id in self._calls
            if call_id not in self._forgotten
        }
        if not streams:
            await asyncio.sleep(self.block_ms / 1000)
            return 0
        reply: Any = await self.redis.xread(streams, count=READ_COUNT, block=self.block_ms)  # type: ignore[arg-type]
        applied = 0
        for stream, entries in reply or []:
            call_id = feed.call_of(self._text(stream))
            if call_id in self._forgotten:
                continue
            # A call first read here (this server started, or the call is new to it):
            # its past is applied quietly and the desk told only where it stands now.
            first = call_id not in self._last_ids
            changed = False
            for entry_id, fields in entries:
                changed |= self._apply(call_id, self._text(entry_id), fields, notify=not first)
                applied += 1
            if first and changed:
                self._notify(call_id, self.states[call_id])
        return applied

    def _apply(self, call_id: str, entry_id: str, raw: dict[Any, Any], *, notify: bool) -> bool:
        fields = {self._text(k): self._text(v) for k, v in raw.items()}
        state = self.states.get(call_id)
        if state is None:
            state = self.states[call_id] = CallIntegrity()
        self._last_ids[call_id] = entry_id
        self.applied += 1
        try:
            changed = feed.apply_entry(state, fields)
        except (KeyError, ValueError, TypeError):
            log.warning("integrity.remote_bad_entry", call_id=call_id)
            return False
        if changed and notify:
            self._notify(call_id, state)
        return changed

    def _notify(self, call_id: str, state: CallIntegrity) -> None:
        try:
            self._notices.put_nowait(_Notice(call_id, integrity_message(call_id, state)))
        except asyncio.QueueFull:
            self.notices_lost += 1
            log.warning("integrity.remote_notice_lost", call_id=call_id)

    @staticmethod
    def _text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    async def _read_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self.read_once()
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                delay = self._backoff.compute(failures)
                log.warning(
                    "integrity.remote_read_failed",
                    error=type(exc).__name__,
                    attempt=failures,
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def _notify_forever(self) -> None:
        """Each change to the desk connected here, if the call's specialist is."""
        while True:
            notice = await self._notices.get()
            try:
                async with self.sessions() as session:
                    call = await repo.get_call(session, notice.call_id)
                specialist = call.specialist_id if call is not None else None
                if specialist and self.hub.is_connected_here(Role.SPECIALIST, specialist):
                    self.hub.send_local(Role.SPECIALIST, specialist, notice.message)
            except Exception:
                log.exception("integrity.remote_notice_failed", call_id=notice.call_id)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._read_forever(), name="integrity-remote-read"),
                asyncio.create_task(self._notify_forever(), name="integrity-remote-notices"),
            ]

    async def stop(self) -> None:
        """Stop reading and notifying; safe twice."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await cancel_and_wait(task)
