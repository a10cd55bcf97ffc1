"""Media set-up for accepted calls, relayed signaling, and recovery from drops.

The specialist's desk is the offerer (better network) and the customer's app the
answerer (it stays passive). The server relays SDP and ICE between exactly the two
parties of a call after :func:`signaling.relay.relay_target` approves, and keeps
the media session (see :mod:`server.media.store`) so that:

- a party whose socket drops has ``media_grace_s`` to come back with a new
  ``hello``; when everyone is back both get ``media.restart`` (with their role and
  fresh ICE servers) and build a new peer connection for the same call, since
  aiortc has no ICE restart;
- a party that reports ``failed`` (network switch, lift) triggers the same restart
  while both sockets are up;
- past the grace window the call ends as ``failed`` and the specialist moves to
  wrap-up; the customer is told in plain words when they come back.

In ``relay`` mode (the default) the server is each party's peer: ``webrtc.*``
messages go to the call's media node (see :mod:`server.media.nodes`) instead of
to the other party, and a call whose node dies is moved to another node and
restarted for both parties. In ``direct`` mode they are relayed peer to peer.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from sqlalchemy import select

from server.auth.principal import Principal, Role
from server.calls import repository as repo
from server.calls.state import EndReason
from server.db.models import Call
from server.errors import Conflict
from server.hub.connection import ClientConnection
from signaling.session import IllegalTransition, MediaSessionState

from .parties import (
    FAILED_MESSAGE,
    FAILED_NOTICE_WINDOW_S,
    EndConversation,
    node_call,
    party_of,
    ref_of,
)
from .signals import MediaSignals
from .store import MediaRecord
from .upkeep import MediaUpkeep

log = structlog.get_logger(__name__)

__all__ = ["EndConversation", "MediaCoordinator", "party_of"]


class MediaCoordinator(MediaSignals, MediaUpkeep):
    """Media of accepted calls, while they are in conversation. It holds no call
    service: the start and end of a call's media are outbox handlers
    (:class:`server.media.lifecycle.MediaLifecycle`), a call's first connection is
    written as a ``CallActive`` event with its transition (``outbox``), and the
    sweep is given ``end_conversation`` with each :meth:`sweep`.

    Its parts, one module each: :mod:`.parts` (collaborators, restart, ``media.*``
    messages), :mod:`.signals` (messages from clients), :mod:`.upkeep` (the sweep);
    here the sockets' hello and close."""

    # -- sockets -----------------------------------------------------------------
    async def connected(self, connection: ClientConnection) -> list[dict[str, Any]]:
        """A party (re)connected: resume media of its call, or explain how it ended."""
        party = party_of(connection.principal)
        if party is None:
            return []
        call = await self._call_in_conversation(connection.principal)
        if call is None:
            return await self._failed_notice(connection.principal)
        now = self.clock()

        def resume(record: MediaRecord) -> tuple[bool, bool]:
            """(restarted, was the party marked absent)"""
            record.connections[party] = connection.conn_id
            session = record.session
            was_absent = party in session.absent_parties
            if session.state is MediaSessionState.CLOSED:
                return False, was_absent
            if was_absent:
                if not session.party_returned(party, now):
                    return False, True  # the other party is still away
            elif session.absent_parties:
                return False, False
            # A new socket means a new app state (the old socket may not even be
            # noticed as gone yet): a fresh peer connection for both parties.
            session.restart(now)
            return True, was_absent

        try:
            restarted, was_absent = await self.store.change(call.call_id, resume)
        except (IllegalTransition, Conflict) as exc:
            log.info("media.resume_refused", call_id=call.call_id, reason=str(exc))
            return []
        async with self.sessions() as session:
            kind = "party_returned" if was_absent else "party_reconnected"
            await repo.add_event(session, call.call_id, now, kind, party)
            if restarted:
                await repo.add_event(
                    session, call.call_id, now, "media_restarted", reason="reconnect"
                )
            await session.commit()
        if restarted:
            await self._send_media(call, "media.restart", reason="reconnect")
        return []

    async def disconnected(self, connection: ClientConnection) -> None:
        party = party_of(connection.principal)
        if party is None:
            return
        call = await self._call_in_conversation(connection.principal)
        if call is None:
            return
        now = self.clock()

        def drop(record: MediaRecord) -> bool:
            # Only the party's current socket counts: an old one closing after
            # the client already came back on a new socket changes nothing.
            if record.connections.get(party, connection.conn_id) != connection.conn_id:
                return False
            if record.session.state in (MediaSessionState.IDLE, MediaSessionState.CLOSED):
                return False
            record.session.party_dropped(party, now)
            return True

        try:
            dropped = await self.store.change(call.call_id, drop)
        except (IllegalTransition, Conflict):
            return
        ref = ref_of(call)
        if dropped and self.media is not None and ref is not None:
            await node_call(self.media.party_left(ref, party), call.call_id)
        if dropped:
            async with self.sessions() as session:
                await repo.add_event(session, call.call_id, now, "party_dropped", party)
                await session.commit()

    async def _failed_notice(self, principal: Principal) -> list[dict[str, Any]]:
        """Tell a returning customer, once, that their call ended while away."""
        if principal.role is not Role.CUSTOMER:
            return []
        since = repo.utc(time.time() - FAILED_NOTICE_WINDOW_S)
        async with self.sessions() as session:
            result = await session.execute(
                select(Call)
                .where(
                    Call.customer_id == principal.subject,
                    Call.end_reason == EndReason.FAILED.value,
                    Call.conversation_ended_at >= since,
                )
                .order_by(Call.conversation_ended_at.desc())
                .limit(1)
            )
            call = result.scalars().first()
            if call is None:
                return []
            told = [
                e
                for e in await repo.timeline(session, call.call_id)
                if e.kind == "customer_told_failed"
            ]
            if told:
                return []
            await repo.add_event(session, call.call_id, self.clock(), "customer_told_failed")
            await session.commit()
        return [
            {
                "type": "call.ended",
                "call_id": call.call_id,
                "end_reason": EndReason.FAILED.value,
                "message": FAILED_MESSAGE,
            }
        ]
