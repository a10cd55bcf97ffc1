"""The outbox tables' queries (server/db/outbox.py): append, read pending, mark."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.outbox import OutboxDelivery, OutboxEvent

from .events import Event, encode


def utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def append(session: AsyncSession, event: Event, node_id: str, *, delivered: bool = False) -> str:
    """Add ``event`` to the caller's transaction; it is written when the caller
    commits, and never if the caller rolls back. ``delivered``: written as
    delivered already (a kind no handler takes). Returns the event's id."""
    event_id = uuid.uuid4().hex
    session.add(
        OutboxEvent(
            event_id=event_id,
            kind=event.kind,
            call_id=event.call_id,
            node_id=node_id,
            payload=encode(event),
            created_at=utc(event.at),
            delivered_at=utc(event.at) if delivered else None,
        )
    )
    return event_id


async def has_pending(session: AsyncSession, call_id: str, kind: str) -> bool:
    """Whether an undelivered event of ``kind`` for ``call_id`` is in the table."""
    query = select(OutboxEvent.id).where(
        OutboxEvent.call_id == call_id,
        OutboxEvent.kind == kind,
        OutboxEvent.delivered_at.is_(None),
    )
    return (await session.execute(query.limit(1))).first() is not None


async def pending(
    session: AsyncSession,
    *,
    node_id: str,
    adopt_before: float,
    call_id: str | None,
    limit: int,
) -> Sequence[OutboxEvent]:
    """Undelivered events in order: this node's, and other nodes' older than
    ``adopt_before`` (their node may be gone); only ``call_id``'s when given."""
    query = select(OutboxEvent).where(OutboxEvent.delivered_at.is_(None))
    query = query.where(
        or_(OutboxEvent.node_id == node_id, OutboxEvent.created_at < utc(adopt_before))
    )
    if call_id is not None:
        query = query.where(OutboxEvent.call_id == call_id)
    return (await session.execute(query.order_by(OutboxEvent.id).limit(limit))).scalars().all()


async def delivered_handlers(session: AsyncSession, event_ids: list[str]) -> set[tuple[str, str]]:
    """(event id, handler) pairs already delivered among ``event_ids``."""
    if not event_ids:
        return set()
    rows = await session.execute(
        select(OutboxDelivery.event_id, OutboxDelivery.handler).where(
            OutboxDelivery.event_id.in_(event_ids)
        )
    )
    return {(event_id, handler) for event_id, handler in rows.all()}


async def mark_handled(
    session: AsyncSession, handled: Sequence[tuple[str, str, int]], at: float
) -> None:
    """Record that each (event id, handler, failures) was handled, in one
    statement; a pair recorded already (by another relay, or an earlier try) is
    left as it is."""
    if not handled:
        return
    rows = [
        {"event_id": event_id, "handler": handler, "delivered_at": utc(at), "failures": failures}
        for event_id, handler, failures in handled
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(OutboxDelivery).on_conflict_do_nothing(
        index_elements=[OutboxDelivery.event_id, OutboxDelivery.handler]
    )
    await session.execute(statement, rows)


async def mark_delivered(session: AsyncSession, event_ids: Sequence[str], at: float) -> None:
    """Mark the events delivered (every handler that takes them has)."""
    await session.execute(
        update(OutboxEvent).where(OutboxEvent.event_id.in_(event_ids)).values(delivered_at=utc(at))
    )


async def prune(session: AsyncSession, delivered_before: float) -> int:
    """Delete events delivered before ``delivered_before``, with their deliveries."""
    old = select(OutboxEvent.event_id).where(OutboxEvent.delivered_at < utc(delivered_before))
    event_ids = list((await session.execute(old)).scalars().all())
    if not event_ids:
        return 0
    await session.execute(delete(OutboxDelivery).where(OutboxDelivery.event_id.in_(event_ids)))
    await session.execute(delete(OutboxEvent).where(OutboxEvent.event_id.in_(event_ids)))
    return len(event_ids)
