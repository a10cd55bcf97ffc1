"""The media sweep: calls whose grace window ran out end as failed, stuck
interruptions are restarted, and calls of a dead media node move to another."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from server.calls import repository as repo
from server.calls.state import IN_CONVERSATION, EndReason
from server.db.models import Call
from server.errors import Conflict
from signaling.session import IllegalTransition, MediaSessionState

from .directory import NoMediaNode
from .parties import (
    EndConversation,
)
from .parts import MediaParts
from .store import MediaRecord

log = structlog.get_logger(__name__)


# A session interrupted with both parties present this long gets a restart: the
# peers' ICE did not recover by itself.
RESTART_AFTER_S = 4.0


class MediaUpkeep(MediaParts):
    """Housekeeping over the calls in conversation (run by the dispatcher)."""

    async def sweep(self, now: float, end_conversation: EndConversation) -> None:
        """End calls whose grace window ran out; restart stuck interruptions."""
        async with self.sessions() as session:
            calls = await repo.calls_in_states(session, set(IN_CONVERSATION))
        if self.media is not None:
            await self._move_off_dead_nodes(calls, now)
        for call in calls:
            if not call.media:
                continue
            record = MediaRecord.from_json(call.media)
            media = record.session
            if media.state not in (MediaSessionState.INTERRUPTED, MediaSessionState.RESTARTING):
                continue
            if media.grace_deadline is not None and now >= media.grace_deadline:
                await self._expire(call, now, end_conversation)
            elif (
                media.state is MediaSessionState.INTERRUPTED
                and media.interrupted_at is not None
                and now - media.interrupted_at >= RESTART_AFTER_S
            ):
                await self._restart_if_present(call, now, "no_recovery")

    async def _expire(self, call: Call, now: float, end_conversation: EndConversation) -> None:
        try:
            expired = await self.store.change(call.call_id, lambda r: r.session.grace_expired(now))
        except Conflict:
            return
        if expired:
            log.info("media.grace_expired", call_id=call.call_id)
            await end_conversation(call.call_id, EndReason.FAILED, now)

    async def _move_off_dead_nodes(self, calls: Sequence[Call], now: float) -> None:
        """Calls whose media node died get another node and a restart for both parties."""
        assert self.media is not None
        live = [c for c in calls if c.media and c.specialist_id is not None]
        try:
            lost = set(await self.media.lost([c.call_id for c in live]))
        except (ConnectionError, OSError) as exc:
            log.warning("media.node_check_failed", error=str(exc))
            return
        for call in live:
            if call.call_id not in lost:
                continue
            try:
                moved = await self.media.reassign(call.call_id)
            except NoMediaNode:
                log.error("media.no_node", call_id=call.call_id)
                continue
            if not moved:
                continue  # another server moved it first
            log.warning("media.node_lost", call_id=call.call_id)

            def restart(record: MediaRecord) -> bool:
                if record.session.absent_parties:
                    return False  # restarted when the absent party returns
                record.session.restart(now)
                return True

            try:
                restarted = await self.store.change(call.call_id, restart)
            except (IllegalTransition, Conflict):
                continue
            if restarted:
                async with self.sessions() as session:
                    await repo.add_event(
                        session, call.call_id, now, "media_restarted", reason="media_node_lost"
                    )
                    await session.commit()
                await self._send_media(call, "media.restart", reason="media_node_lost")
