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

from typing import Any

import structlog
from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from server.calls import repository as repo
from server.calls.state import EndReason
from server.db.models import Call, CallEvent
from server.errors import Conflict
from server.hub.connection import ClientConnection
from signaling.relay import CallParties
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

__all__ = ["EndConversation", "MediaCoordinator", "latest_failed_call", "party_of"]

# The timeline event saying the customer was told their call failed (told once).
FAILED_NOTICE_EVENT = "customer_told_failed"


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
        """A desk (re)connected: resume the media of the call it holds. (A customer's
        hello is the greeting's, server/connect/greeting.py, which reads its call
        with everything else and calls :meth:`party_returned` or :meth:`tell_failed`.)"""
        party = party_of(connection.principal)
        if party is None:
            return []
        call = await self._call_in_conversation(connection.principal)
        if call is None:
            return []
        parties = ref_of(call)
        return [] if parties is None else await self.party_returned(connection, parties)

    async def party_returned(
        self, connection: ClientConnection, call: CallParties
    ) -> list[dict[str, Any]]:
        """A party's new socket came up while ``call`` is in conversation: it takes
        over the party's media (a restart for both once everyone is back)."""
        party = party_of(connection.principal)
        if party is None:
            return []
        connection.had_media = True
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
        # A socket that never carried media (a customer who only waited) has none
        # to mark absent: no query for it.
        if party is None or not connection.had_media:
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

    async def tell_failed(self, call_id: str) -> list[dict[str, Any]]:
        """The notice for a customer whose call ``call_id`` (their latest, ended as
        failed within :data:`FAILED_NOTICE_WINDOW_S`) ended while away; told once."""
        async with self.sessions() as session:
            told = await session.execute(
                select(CallEvent.event_id)
                .where(CallEvent.call_id == call_id, CallEvent.kind == FAILED_NOTICE_EVENT)
                .limit(1)
            )
            if told.first() is not None:
                return []
            await repo.add_event(session, call_id, self.clock(), FAILED_NOTICE_EVENT)
            await session.commit()
        return [
            {
                "type": "call.ended",
                "call_id": call_id,
                "end_reason": EndReason.FAILED.value,
                "message": FAILED_MESSAGE,
            }
        ]


def latest_failed_call(customer: Any, now: float) -> Select[str]:
    """The id of the customer's latest call that failed within the notice window
    (``customer``: their id, or a column to correlate with)."""
    failed = aliased(Call, name="failed")
    return (
        select(failed.call_id)
        .where(
            failed.customer_id == customer,
            failed.end_reason == EndReason.FAILED.value,
            failed.conversation_ended_at >= repo.utc(now - FAILED_NOTICE_WINDOW_S),
        )
        .order_by(failed.conversation_ended_at.desc())
        .limit(1)
    )
