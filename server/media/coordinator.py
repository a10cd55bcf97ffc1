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
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from server.auth.principal import Principal, Role
from server.calls import repository as repo
from server.calls.state import IN_CONVERSATION, CallAction, CallState, EndReason
from server.db.models import Call, CallEvent
from server.errors import Conflict, ServiceUnavailable, ValidationFailed
from server.hub.connection import ClientConnection
from signaling.media.bridge import BridgeRefused
from signaling.messages import (
    MEDIA_ROLE_OF_PARTY,
    MediaState,
    PartyRole,
    WebRtcAnswer,
    WebRtcIce,
    WebRtcOffer,
    parse_client_media_message,
)
from signaling.relay import CallParties, RelayRefused, relay_target
from signaling.session import IllegalTransition, MediaSessionState

from .directory import NoMediaNode
from .nodes import MediaRelay
from .store import MediaRecord, MediaStore

if TYPE_CHECKING:
    from server.ports import Clock, Notifier

log = structlog.get_logger(__name__)

# A session interrupted with both parties present this long gets a restart: the
# peers' ICE did not recover by itself.
RESTART_AFTER_S = 4.0
FAILED_NOTICE_WINDOW_S = 900.0
# The timeline event saying the customer was told their call failed (told once).
FAILED_NOTICE_EVENT = "customer_told_failed"

FAILED_MESSAGE = {
    "zh": "刚才网络中断，视频通话已结束。您可以再点一次按钮，我们会尽快为您接通。",
    "en": "The network dropped and the video call ended. Tap the button again and "
    "we will put you through as soon as we can.",
}


def party_of(principal: Principal) -> PartyRole | None:
    if principal.role is Role.CUSTOMER:
        return "customer"
    if principal.role is Role.SPECIALIST:
        return "specialist"
    return None


# Ends a call's conversation: (call_id, reason, now) -> whether it ended now.
EndConversation = Callable[[str, EndReason, float], Awaitable[bool]]
# Media is up for the first time: the call is active (told to the call's observers).
CallActivated = Callable[[str], Awaitable[None]]


class MediaCoordinator:
    """Media of accepted calls. It holds no call service: the call service tells it
    of lifecycle steps (it is one of the call's observers), and what it does to a
    call in return is given to it, ``activated`` here and ``end_conversation`` with
    each :meth:`sweep`, so that the two are built one after the other."""

    def __init__(
        self,
        store: MediaStore,
        ice_servers: Callable[[str], list[dict[str, Any]]],
        media: MediaRelay | None = None,
        *,
        sessions: async_sessionmaker[AsyncSession],
        hub: Notifier,
        clock: Clock,
        activated: CallActivated,
    ) -> None:
        self.store = store
        self.ice_servers = ice_servers
        self.media = media  # None: direct (peer-to-peer) mode
        self.sessions = sessions
        self.hub = hub
        self.clock = clock
        self.activated = activated

    # -- call lifecycle hooks --------------------------------------------------
    async def call_accepted(self, call: Call) -> None:
        now = self.clock()
        await self.store.create(call.call_id, lambda r: r.session.start(now))
        if self.media is not None:
            await self._assign_node(call)
        await self._send_media(call, "media.start")

    async def call_active(self, call: Call) -> None:
        return None

    async def conversation_ended(self, call: Call) -> None:
        now = self.clock()
        try:
            await self.store.change(call.call_id, lambda r: r.session.close(now, "hangup"))
        except Conflict:
            return  # media never started
        ref = _ref(call)
        if self.media is not None and ref is not None:
            await _node_call(self.media.close_call(ref), call.call_id)

    # -- sockets -----------------------------------------------------------------
    async def connected(self, connection: ClientConnection) -> list[dict[str, Any]]:
        """A party (re)connected: resume media of its call, or explain how it ended."""
        party = party_of(connection.principal)
        if party is None:
            return []
        call = await self._call_in_conversation(connection.principal)
        if call is None:
            return await self._failed_notice(connection.principal)
        if call.specialist_id is None:  # never so in conversation
            return []
        parties = CallParties(call.call_id, call.customer_id, call.specialist_id)
        return await self.party_returned(connection, parties)

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
        ref = _ref(call)
        if dropped and self.media is not None and ref is not None:
            await _node_call(self.media.party_left(ref, party), call.call_id)
        if dropped:
            async with self.sessions() as session:
                await repo.add_event(session, call.call_id, now, "party_dropped", party)
                await session.commit()

    # -- messages from clients -----------------------------------------------------
    async def handle(self, connection: ClientConnection, data: dict[str, Any]) -> None:
        try:
            message = parse_client_media_message(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationFailed(f"{where}: {first['msg']}", code="invalid_message") from exc
        principal = connection.principal
        party = party_of(principal)
        call = await self._call(message.call_id)
        if party is None or call is None or not self._is_party(call, principal):
            raise Conflict("you are not a party of that call", code="not_in_call")
        if CallState(call.state) not in IN_CONVERSATION or call.specialist_id is None:
            raise Conflict(f"call is {call.state}; no media now", code="illegal_state")
        if isinstance(message, MediaState):
            await self._report(call, party, message.state, connection.conn_id)
            return
        parties = CallParties(call.call_id, call.customer_id, call.specialist_id)
        try:
            target = relay_target(principal.role.value, principal.subject, parties, message)
        except RelayRefused as exc:
            raise Conflict(exc.detail, code=exc.code) from exc
        conn_id = connection.conn_id
        note: Callable[[MediaRecord], int] | None = None
        kind: Literal["offer", "answer"] | None = None
        if isinstance(message, WebRtcOffer | WebRtcAnswer):
            now = self.clock()
            kind = "offer" if isinstance(message, WebRtcOffer) else "answer"

            def note(record: MediaRecord) -> int:
                record.connections.setdefault(party, conn_id)
                if kind == "offer":
                    record.session.offer_relayed(now)
                else:
                    record.session.answer_relayed(now)
                return record.session.generation

        generation: int | None = None
        if note is not None:
            try:
                generation = await self.store.change(call.call_id, note)
            except IllegalTransition as exc:
                raise Conflict(str(exc), code="illegal_state") from exc
        if self.media is None:
            await self.hub.send(Role(target.role), target.subject, message.model_dump(mode="json"))
            return
        try:
            await self._to_node(call, parties, party, message, generation)
        except (Conflict, ServiceUnavailable):
            if kind is not None and generation is not None:
                await self._description_refused(call.call_id, kind, generation)
            raise

    async def _to_node(
        self,
        call: Call,
        parties: CallParties,
        party: PartyRole,
        message: WebRtcOffer | WebRtcAnswer | WebRtcIce,
        generation: int | None = None,
    ) -> None:
        """Relay mode: the server is the party's peer; the call's media node answers.

        An offer or answer is counted in the media session *before* it reaches
        the node: the node answers the desk's offer by offering the app, whose
        answer can come back while this step is still under way, and that
        answer must find the offer counted. One the node refuses is uncounted
        again: by the caller when the node is this process's (see
        :meth:`_description_refused`), by the node's process otherwise, which
        answers the party asynchronously (``generation`` goes with the message).
        """
        assert self.media is not None
        try:
            await self.media.signal(
                parties,
                party,
                message.model_dump(mode="json"),
                generation=generation,
            )
        except BridgeRefused as exc:
            raise Conflict(exc.detail, code=exc.code) from exc
        except NoMediaNode as exc:
            raise ServiceUnavailable(str(exc), code="media_unavailable") from exc

    async def _description_refused(
        self, call_id: str, kind: Literal["offer", "answer"], generation: int
    ) -> None:
        """The node refused an offer or answer: the party may send a good one."""
        try:
            await self.store.description_refused(call_id, kind, generation, self.clock())
        except Conflict as exc:
            log.warning("media.refusal_not_recorded", call_id=call_id, reason=str(exc))

    async def _report(self, call: Call, party: PartyRole, state: str, conn_id: str) -> None:
        now = self.clock()

        def apply(record: MediaRecord) -> tuple[MediaSessionState, MediaSessionState, bool]:
            session = record.session
            # The newest hello names the current socket; a report fills it in
            # only for a party whose socket predates its call's media session.
            if party not in session.absent_parties:
                record.connections.setdefault(party, conn_id)
            before = session.state
            first = session.first_connected_at is None
            after = session.reported(party, state, now)  # type: ignore[arg-type]
            return before, after, first

        try:
            before, after, first = await self.store.change(call.call_id, apply)
        except IllegalTransition as exc:
            raise Conflict(str(exc), code="illegal_state") from exc
        async with self.sessions() as session:
            if after is MediaSessionState.CONNECTED and before is not MediaSessionState.CONNECTED:
                if first:
                    await repo.transition(
                        session,
                        call.call_id,
                        CallAction.MEDIA_CONNECTED,
                        media_started_at=repo.utc(now),
                    )
                await repo.add_event(
                    session, call.call_id, now, "media_connected" if first else "media_reconnected"
                )
            elif after is MediaSessionState.INTERRUPTED and before is not after:
                await repo.add_event(
                    session, call.call_id, now, "media_interrupted", party, state=state
                )
            await session.commit()
        if after is MediaSessionState.CONNECTED and before is not after and first:
            await self.activated(call.call_id)
        if state == "failed":
            await self._restart_if_present(call, now, "failed")

    async def _restart_if_present(self, call: Call, now: float, reason: str) -> bool:
        def restart(record: MediaRecord) -> bool:
            session = record.session
            if session.absent_parties or session.state is not MediaSessionState.INTERRUPTED:
                return False
            session.restart(now)
            return True

        try:
            restarted = await self.store.change(call.call_id, restart)
        except (IllegalTransition, Conflict):
            return False
        if restarted:
            async with self.sessions() as session:
                await repo.add_event(session, call.call_id, now, "media_restarted", reason=reason)
                await session.commit()
            await self._send_media(call, "media.restart", reason=reason)
        return restarted

    # -- housekeeping ----------------------------------------------------------------
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

    # -- helpers -----------------------------------------------------------------------
    async def _assign_node(self, call: Call) -> None:
        assert self.media is not None
        try:
            node_id = await self.media.assign(call.call_id)
        except NoMediaNode:
            # The parties still get media.start; their offer is then refused
            # with media_unavailable, and a restart tries again.
            log.error("media.no_node", call_id=call.call_id)
            return
        log.info("media.node_assigned", call_id=call.call_id, node_id=node_id)

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

    async def _send_media(
        self, call: Call | CallParties, kind: str, reason: str | None = None
    ) -> None:
        assert call.specialist_id is not None
        ref = _ref(call)
        if kind == "media.restart" and self.media is not None and ref is not None:
            # The node drops the old legs before the parties build new ones.
            await _node_call(self.media.restart(ref), call.call_id)
        ice = self.ice_servers(call.call_id)
        for role, subject in (
            (Role.SPECIALIST, call.specialist_id),
            (Role.CUSTOMER, call.customer_id),
        ):
            party: PartyRole = "specialist" if role is Role.SPECIALIST else "customer"
            message: dict[str, Any] = {
                "type": kind,
                "call_id": call.call_id,
                "role": MEDIA_ROLE_OF_PARTY[party],
                "ice_servers": ice,
            }
            if reason is not None:
                message["reason"] = reason
            await self.hub.send(role, subject, message)

    async def _call(self, call_id: str) -> Call | None:
        async with self.sessions() as session:
            return await repo.get_call(session, call_id)

    @staticmethod
    def _is_party(call: Call, principal: Principal) -> bool:
        if principal.role is Role.CUSTOMER:
            return call.customer_id == principal.subject
        return principal.role is Role.SPECIALIST and call.specialist_id == principal.subject

    async def _call_in_conversation(self, principal: Principal) -> Call | None:
        column = Call.customer_id if principal.role is Role.CUSTOMER else Call.specialist_id
        async with self.sessions() as session:
            result = await session.execute(
                select(Call).where(
                    column == principal.subject,
                    Call.state.in_([s.value for s in IN_CONVERSATION]),
                )
            )
            return result.scalars().first()

    async def _failed_notice(self, principal: Principal) -> list[dict[str, Any]]:
        """Tell a returning customer, once, that their call ended while away."""
        if principal.role is not Role.CUSTOMER:
            return []
        async with self.sessions() as session:
            result = await session.execute(latest_failed_call(principal.subject, time.time()))
            call_id = result.scalars().first()
        return await self.tell_failed(call_id) if call_id is not None else []

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


def _ref(call: Call | CallParties) -> CallParties | None:
    if isinstance(call, CallParties):
        return call
    if call.specialist_id is None:
        return None
    return CallParties(call.call_id, call.customer_id, call.specialist_id)


async def _node_call(step: Awaitable[None], call_id: str) -> None:
    """A control step for the media node that must not fail the caller's own work."""
    try:
        await step
    except (BridgeRefused, NoMediaNode, ConnectionError, OSError) as exc:
        log.warning("media.node_step_failed", call_id=call_id, error=str(exc))
