"""The node's own handlers (``server/bootstrap.py: outbox_handlers``), each run a
second time on an event it already handled, as after a crash between a handler
and the record of its delivery: the second run changes nothing.

The container is built as a node builds it (relay mode, so that the recording
notice applies; no media node runs, so media set-up finds none and says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from server.auth.principal import Principal, Role
from server.bootstrap import Container, build
from server.calls.service import CallRequest
from server.db.banking import AuditEntry, Operation
from server.db.models import Call
from server.outbox.events import CallAccepted, CallActive, ConversationEnded, Event
from server.routing.model import DesiredPresence
from server.settings import Settings

from .world import CUSTOMER, DESK, TRANSFER, Party


async def snapshot(c: Container, call_id: str) -> dict[str, Any]:
    """What the handlers change: the media session, the notices recorded, the
    call's operations, integrity's timers."""
    async with c.sessions() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        notices = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.kind == "recording.notice_sent", AuditEntry.subject_id == call_id)
        )
        operations = (
            await session.execute(
                select(Operation.operation_id, Operation.state, Operation.origin).where(
                    Operation.call_id == call_id
                )
            )
        ).all()
    return {
        "media": call.media,
        "notices": notices,
        "operations": sorted(operations),
        "checks": sorted(c.integrity._random),
    }


async def run_again(c: Container, event: Event) -> None:
    for handler in c.outbox_handlers:
        if event.kind in handler.kinds:
            await handler.handle(event)


async def test_every_handler_run_again_on_its_event_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    c = build(
        Settings(
            dev_mode=True,
            database_url=database_url,
            log_level="WARNING",
            media_mode="relay",
            media_embedded_node=False,
            liveness_random_interval_s=3600.0,
            # No media node records here: a redirect transfer must not wait for one.
            recording_required_operations=[],
            recording_spool_dir=str(tmp_path / "spool"),
            documents_dir=str(tmp_path / "documents"),
        )
    )
    desk = Principal(Role.SPECIALIST, DESK)
    try:
        await c.calls.desk_connected(DESK, "conn-desk")
        await c.calls.set_presence(desk, DesiredPresence.AVAILABLE)
        view, _ = await c.calls.create_call(
            Principal(Role.CUSTOMER, CUSTOMER), CallRequest(None, None, None, False)
        )
        call_id = view["call_id"]
        async with c.sessions() as session:
            # What a redirect's ticket would have given the call.
            context = {"redirect": {"transfer": TRANSFER}}
            await session.execute(
                update(Call).where(Call.call_id == call_id).values(context=context)
            )
            await session.commit()
        await c.dispatcher.run_once()
        offer = await c.backend.pending_offer(DESK)
        assert offer is not None and offer.call_id == call_id
        await c.calls.accept(desk, call_id, offer.offer_id)
        accepted = await snapshot(c, call_id)
        assert accepted["media"] is not None and accepted["notices"] == 1
        await run_again(c, CallAccepted(call_id, c.clock(), DESK))
        assert await snapshot(c, call_id) == accepted

        for party in (Principal(Role.CUSTOMER, CUSTOMER), desk):
            message = {"type": "media.state", "call_id": call_id, "state": "connected"}
            connection: Any = Party(party, f"conn-{party.subject}")
            await c.media_coordinator.handle(connection, message)
        active = await snapshot(c, call_id)
        assert [origin for _, _, origin in active["operations"]] == ["redirect"]
        assert active["checks"] == [call_id]
        await run_again(c, CallActive(call_id, c.clock()))
        assert await snapshot(c, call_id) == active

        await c.calls.end_by_specialist(desk, call_id)
        ended = await snapshot(c, call_id)
        assert ended["checks"] == []
        assert ended["media"]["state"] == "closed"
        await run_again(c, ConversationEnded(call_id, c.clock(), "completed"))
        assert await snapshot(c, call_id) == ended
    finally:
        await c.integrity.stop()
        await c.backend.close()
        await c.engine.dispose()
