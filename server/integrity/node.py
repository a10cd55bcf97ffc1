"""Video integrity in a ``cloudbranch media-node`` process.

:class:`NodeIntegrity` composes the analyser into the node's taps (after the
recorder, as in a server's embedded node) and:

- publishes each call's findings on the call's Redis stream (server/integrity/feed.py),
  from which every server keeps the call's state: the API, the desk's
  ``video.integrity``, the risk input and the liveness checks read it there;
- writes every status change into the database, as the recorder writes its
  index: the ``integrity.changed`` audit entry and the recording marker. The node
  is the one place that sees the change happen, so each is written once, in one
  transaction, whichever server the call's parties are connected to.

Both leave the loop through one bounded queue drained by one owned task; a full
queue loses an entry (counted and logged). A lost stream entry is made good by
the next one, which carries every active signal again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.calls import repository as repo
from server.recordings.index import add_marker
from server.settings import Settings
from server.tasks import cancel_and_wait
from signaling.integrity.state import CallIntegrity, Sample
from signaling.integrity.tap import AnalysingTaps
from signaling.media.tap import MediaTapFactory

from . import feed
from .service import KeyframeRequest, analysing_taps

log = structlog.get_logger(__name__)

QUEUE = 4096  # stream entries and changes waiting for Redis or the database
BATCH = 256  # stream entries sent in one pipeline


@dataclass(frozen=True, slots=True)
class _Entry:
    call_id: str
    at: float
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Change:
    call_id: str
    at: float
    status: str
    codes: tuple[str, ...]


class NodeIntegrity:
    """The analysis of a media node process's calls, shared through Redis and the database."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        sessions: async_sessionmaker[AsyncSession],
        *,
        inner: MediaTapFactory | None = None,
        request_keyframe: KeyframeRequest | None = None,
    ) -> None:
        """``inner``: the node's other taps (its recorder), which the analyser is
        composed with; ``request_keyframe``: asks the node for a keyframe."""
        self.settings = settings
        self.redis = redis
        self.sessions = sessions
        self.taps: AnalysingTaps | None = analysing_taps(
            settings, inner, self, request_keyframe=request_keyframe, feed=self
        )
        # What the node hands each forwarded frame to.
        self.tap_factory: MediaTapFactory | None = self.taps if self.taps is not None else inner
        self.lost = 0
        self.published = 0
        self._queue: asyncio.Queue[_Entry | _Change] = asyncio.Queue(QUEUE)
        self._task: asyncio.Task[None] | None = None

    def forget(self, call_id: str) -> None:
        """The call's media closed on this node: its state is not kept here."""
        if self.taps is not None:
            self.taps.forget(call_id)

    # -- from the analysis, on the loop ----------------------------------------------------
    def analysed(
        self, call_id: str, at: float, signals: feed.Signals, sample: Sample | None
    ) -> None:
        self._put(_Entry(call_id, at, feed.analysed_entry(at, signals, sample)))

    def stopped(self, call_id: str, at: float) -> None:
        self._put(_Entry(call_id, at, feed.stopped_entry(at)))

    def integrity_changed(self, call_id: str, state: CallIntegrity) -> None:
        status, codes = state.key()
        self._put(_Change(call_id, time.time(), status, codes))

    def _put(self, item: _Entry | _Change) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.lost += 1
            if self.lost == 1 or self.lost % 100 == 0:
                log.warning("integrity.node_entry_lost", call_id=item.call_id, lost=self.lost)

    # -- delivery ---------------------------------------------------------------------------
    async def _deliver_forever(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < BATCH and not self._queue.empty():
                items.append(self._queue.get_nowait())
            entries = [i for i in items if isinstance(i, _Entry)]
            try:
                if entries:
                    await self._publish(entries)
            except (RedisError, OSError) as exc:
                self.lost += len(entries)
                log.warning("integrity.node_publish_failed", error=type(exc).__name__)
            for change in (i for i in items if isinstance(i, _Change)):
                try:
                    await self._record(change)
                except Exception:
                    log.exception("integrity.node_change_failed", call_id=change.call_id)
            for _ in items:
                self._queue.task_done()

    async def _publish(self, entries: list[_Entry]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            latest: dict[str, float] = {}
            for entry in entries:
                key = feed.stream_key(entry.call_id)
                pipe.xadd(key, entry.fields, maxlen=feed.STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
                latest[entry.call_id] = max(latest.get(entry.call_id, 0.0), entry.at)
            for call_id in latest:
                pipe.expire(feed.stream_key(call_id), feed.STREAM_TTL_S)
            pipe.zadd(feed.CALLS_KEY, latest)
            pipe.zremrangebyscore(feed.CALLS_KEY, "-inf", time.time() - feed.STREAM_TTL_S)
            await pipe.execute()
        self.published += len(entries)

    async def _record(self, change: _Change) -> None:
        """The audit entry and recording marker of a change (as the server's own node
        writes them: server/integrity/service.py)."""
        data: dict[str, Any] = {"status": change.status, "signals": list(change.codes)}
        async with self.sessions() as session:
            if await repo.get_call(session, change.call_id) is None:
                return
            await audit.record(
                session,
                "integrity.changed",
                at=change.at,
                subject_type="call",
                subject_id=change.call_id,
                data={"call_id": change.call_id, **data},
            )
            await add_marker(
                session, change.call_id, f"integrity_{change.status}", change.at, None, data
            )
            await session.commit()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._deliver_forever(), name="integrity-node-feed")

    async def stop(self) -> None:
        """Stop the workers, then deliver what is queued (briefly), then stop; safe twice."""
        if self.taps is not None:
            await self.taps.close()
        if self._task is not None:
            try:
                async with asyncio.timeout(5):
                    await self._queue.join()
            except TimeoutError:
                log.warning("integrity.node_feed_unflushed", left=self._queue.qsize())
        await cancel_and_wait(self._task)
        self._task = None
