"""A node that commits an event and dies before delivering it (the parent SIGKILLs it).

Usage: python -m tests.outbox.crash_child DATABASE_URL NODE_ID CALL_ID

It commits a ConversationEnded to the outbox, starts the relay with a handler
that never returns (so nothing is marked delivered), prints ``committed`` and
waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys

from server.db.engine import make_engine, make_sessionmaker
from server.outbox.events import ConversationEnded, Event
from server.outbox.relay import Handler, Outbox


async def main(database_url: str, node_id: str, call_id: str) -> None:
    engine = make_engine(database_url)

    async def hang(_event: Event) -> None:
        await asyncio.Event().wait()

    outbox = Outbox(
        make_sessionmaker(engine),
        node_id,
        handlers=[Handler("probe", frozenset({ConversationEnded.kind}), hang)],
    )
    async with outbox.sessions() as session:
        outbox.append(session, ConversationEnded(call_id, 1_700_000_000.0, "completed"))
        await session.commit()

    outbox.start()
    print("committed", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
