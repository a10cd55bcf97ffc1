"""The start and end of a call's media, as the outbox delivers them: ``CallAccepted``
starts it, ``ConversationEnded`` closes it (the handler list is in
``server/bootstrap.py``). Built before the outbox, which the rest of the media
coordinator writes to."""

from __future__ import annotations

import structlog

from server.calls.state import CallState
from server.db.models import Call
from server.errors import Conflict
from signaling.session import MediaSessionState

from .directory import NoMediaNode
from .parties import node_call, ref_of
from .parts import MediaParts
from .store import MediaRecord

log = structlog.get_logger(__name__)


class MediaLifecycle(MediaParts):
    """A call's media session begins when it is accepted and ends with it."""

    async def start(self, call: Call) -> None:
        """The outbox handler of ``CallAccepted``: a fresh media session, a node
        (relay mode), and ``media.start`` to both parties.

        Idempotent: it acts only on a call still connecting whose parties have not
        acted on a ``media.start`` yet (no session, or one with no offer relayed).
        Run again then, it keeps the session and node it made and sends the same
        message again (the first may never have left a node that died); once an
        offer went through, or the call moved on, it does nothing."""
        if CallState(call.state) is not CallState.CONNECTING or _in_use(call):
            return
        if call.media is None:
            now = self.clock()
            await self.store.create(call.call_id, lambda r: r.session.start(now))
        if self.media is not None:
            await self._assign_node(call)
        await self._send_media(call, "media.start")

    async def close(self, call: Call) -> None:
        """The outbox handler of ``ConversationEnded``: the media session closes and
        the node lets the call go. Idempotent (a closed session stays closed, and
        the node forgets a call it no longer has)."""
        now = self.clock()
        try:
            await self.store.change(call.call_id, lambda r: r.session.close(now, "hangup"))
        except Conflict:
            return  # media never started
        ref = ref_of(call)
        if self.media is not None and ref is not None:
            await node_call(self.media.close_call(ref), call.call_id)

    async def _assign_node(self, call: Call) -> None:
        assert self.media is not None
        if await self.media.directory.node_of(call.call_id) is not None:
            return  # assigned by an earlier run
        try:
            node_id = await self.media.assign(call.call_id)
        except NoMediaNode:
            # The parties still get media.start; their offer is then refused
            # with media_unavailable, and a restart tries again.
            log.error("media.no_node", call_id=call.call_id)
            return
        log.info("media.node_assigned", call_id=call.call_id, node_id=node_id)


def _in_use(call: Call) -> bool:
    """Whether the parties have acted on the call's media session."""
    if call.media is None:
        return False
    session = MediaRecord.from_json(call.media).session
    return (
        session.state is not MediaSessionState.NEGOTIATING or session.offer_relayed_at is not None
    )
