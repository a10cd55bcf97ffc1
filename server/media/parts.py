"""What the parts of the media coordinator share: its collaborators, the restart
and the ``media.*`` messages sent to both parties."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Principal, Role
from server.calls import repository as repo
from server.calls.state import IN_CONVERSATION
from server.db.models import Call
from server.errors import Conflict
from server.outbox.relay import Outbox
from signaling.messages import (
    MEDIA_ROLE_OF_PARTY,
    PartyRole,
)
from signaling.session import IllegalTransition, MediaSessionState

from .nodes import MediaRelay
from .parties import (
    node_call,
    ref_of,
)
from .store import MediaRecord, MediaStore

if TYPE_CHECKING:
    from server.ports import Clock, Notifier


class MediaParts:
    """The media coordinator's collaborators and shared steps (see
    :class:`server.media.coordinator.MediaCoordinator`)."""

    def __init__(
        self,
        store: MediaStore,
        ice_servers: Callable[[str], list[dict[str, Any]]],
        media: MediaRelay | None = None,
        *,
        sessions: async_sessionmaker[AsyncSession],
        hub: Notifier,
        clock: Clock,
        outbox: Outbox | None = None,
    ) -> None:
        self.store = store
        self.ice_servers = ice_servers
        self.media = media  # None: direct (peer-to-peer) mode
        self.sessions = sessions
        self.hub = hub
        self.clock = clock
        # Where a call's activation is written, with its transition (server/outbox);
        # only the coordinator writes one (the lifecycle's steps are its handlers).
        self.outbox = outbox

    async def _send_media(self, call: Call, kind: str, reason: str | None = None) -> None:
        assert call.specialist_id is not None
        ref = ref_of(call)
        if kind == "media.restart" and self.media is not None and ref is not None:
            # The node drops the old legs before the parties build new ones.
            await node_call(self.media.restart(ref), call.call_id)
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
