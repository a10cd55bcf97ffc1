"""Media sessions persisted on the call row, changed by optimistic compare-and-set.

The two parties of a call may be connected to different nodes, so the session
cannot live in one process's memory. Each change loads the row's JSON and
version, applies a pure transition of :class:`signaling.session.MediaSession`,
and writes back only if the version is unchanged; on a conflict it retries with
the fresh row. Changes are rare (start, reports, drops, restarts), never per ICE
candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Call
from server.errors import Conflict
from signaling.session import MediaSession, MediaSessionState

T = TypeVar("T")

_FLOAT_FIELDS = (
    "started_at",
    "first_connected_at",
    "connected_at",
    "interrupted_at",
    "grace_deadline",
    "closed_at",
    "offer_relayed_at",
    "answer_relayed_at",
)
_MAX_ATTEMPTS = 8


@dataclass
class MediaRecord:
    """A media session and which socket of each party is the current one."""

    session: MediaSession
    connections: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        s = self.session
        data: dict[str, Any] = {name: getattr(s, name) for name in _FLOAT_FIELDS}
        data.update(
            call_id=s.call_id,
            grace_s=s.grace_s,
            state=s.state.value,
            generation=s.generation,
            restarts=s.restarts,
            close_reason=s.close_reason,
            connected_parties=sorted(s.connected_parties),
            absent_parties=sorted(s.absent_parties),
            connections=self.connections,
        )
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MediaRecord:
        session = MediaSession(call_id=data["call_id"], grace_s=data["grace_s"])
        session.state = MediaSessionState(data["state"])
        session.generation = data["generation"]
        session.restarts = data["restarts"]
        session.close_reason = data["close_reason"]
        for name in _FLOAT_FIELDS:
            setattr(session, name, data.get(name))
        session.connected_parties = set(data["connected_parties"])
        session.absent_parties = set(data["absent_parties"])
        return cls(session=session, connections=dict(data.get("connections", {})))


class MediaStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], grace_s: float) -> None:
        self._sessions = sessions
        self._grace_s = grace_s

    async def create(self, call_id: str, change: Callable[[MediaRecord], T]) -> T:
        """Start a fresh record for ``call_id`` (replacing any) and apply ``change``."""
        return await self._apply(call_id, change, fresh=True)

    async def change(self, call_id: str, change: Callable[[MediaRecord], T]) -> T:
        """Apply ``change`` to the call's record; it may raise to leave it untouched."""
        return await self._apply(call_id, change, fresh=False)

    async def description_refused(
        self, call_id: str, kind: Literal["offer", "answer"], generation: int, now: float
    ) -> bool:
        """The media node refused an offer or answer counted in ``generation``: it no
        longer counts, so the party may send a good one (see
        :meth:`signaling.session.MediaSession.description_refused`). Wherever the
        refusal is seen: the server for its own node, a media-node process for its."""
        return await self.change(
            call_id, lambda record: record.session.description_refused(kind, generation, now)
        )

    async def read(self, call_id: str) -> MediaRecord | None:
        async with self._sessions() as session:
            call = await session.get(Call, call_id)
            if call is None or call.media is None:
                return None
            return MediaRecord.from_json(call.media)

    async def _apply(self, call_id: str, change: Callable[[MediaRecord], T], fresh: bool) -> T:
        for _ in range(_MAX_ATTEMPTS):
            async with self._sessions() as session:
                row = (
                    await session.execute(
                        Call.__table__.select()
                        .with_only_columns(Call.media, Call.media_version)
                        .where(Call.call_id == call_id)
                    )
                ).first()
                if row is None:
                    raise Conflict(f"no call {call_id}", code="call_not_found")
                media, version = row
                if fresh or media is None:
                    if not fresh:
                        raise Conflict("media has not started for this call", code="no_media")
                    record = MediaRecord(MediaSession(call_id=call_id, grace_s=self._grace_s))
                else:
                    record = MediaRecord.from_json(media)
                result = change(record)
                written = await session.execute(
                    update(Call)
                    .where(Call.call_id == call_id, Call.media_version == version)
                    .values(media=record.to_json(), media_version=version + 1)
                )
                await session.commit()
                if getattr(written, "rowcount", 0):
                    return result
        raise Conflict("media session is changing too fast; try again", code="media_busy")
