"""Messages from clients about media: SDP and ICE relayed to the other party or
to the call's media node, and the parties' reports of their connection state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import structlog
from pydantic import ValidationError

from server.auth.principal import Role
from server.calls import repository as repo
from server.calls.state import IN_CONVERSATION, CallAction, CallState
from server.db.models import Call
from server.errors import Conflict, ServiceUnavailable, ValidationFailed
from server.hub.connection import ClientConnection
from server.outbox.events import CallActive
from signaling.media.bridge import BridgeRefused
from signaling.messages import (
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
from .parties import party_of, ref_of
from .parts import MediaParts
from .store import MediaRecord

log = structlog.get_logger(__name__)


class MediaSignals(MediaParts):
    """``webrtc.*`` and ``media.state`` messages of a call's parties."""

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
        parties = ref_of(call)
        assert parties is not None  # a call in conversation has its specialist
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
        activated = False
        async with self.sessions() as session:
            if after is MediaSessionState.CONNECTED and before is not MediaSessionState.CONNECTED:
                if first:
                    activated = await repo.transition(
                        session,
                        call.call_id,
                        CallAction.MEDIA_CONNECTED,
                        media_started_at=repo.utc(now),
                    )
                if activated and self.outbox is not None:
                    # What reacts to an active call (server/bootstrap.py) runs from
                    # the outbox: written with the transition, delivered below.
                    self.outbox.append(session, CallActive(call.call_id, now))
                await repo.add_event(
                    session, call.call_id, now, "media_connected" if first else "media_reconnected"
                )
            elif after is MediaSessionState.INTERRUPTED and before is not after:
                await repo.add_event(
                    session, call.call_id, now, "media_interrupted", party, state=state
                )
            await session.commit()
        if activated and self.outbox is not None:
            await self.outbox.flush(call.call_id)
        if state == "failed":
            await self._restart_if_present(call, now, "failed")
