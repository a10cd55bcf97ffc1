"""A node whose services commit a call's changes and die before their events are
delivered (the parent SIGKILLs it).

Usage: python -m tests.outbox.crash_call_child DATABASE_URL NODE_ID DOCUMENTS_DIR

It runs one call through the real services (tests/outbox/world.py): queued,
offered, accepted, media up, conversation ended. The one handler of the handled
kinds never returns, so the accept's delivery hangs in it and every later
delivery waits behind it: each change has committed, none of its events has been
delivered. It prints ``committed <call id>`` once the last event is committed, and waits to
be killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from server.outbox.events import RECORD_ONLY, CallAccepted, CallActive, ConversationEnded, Event
from server.outbox.relay import Handler

from .world import until_written, world

HANDLED = frozenset({CallAccepted.kind, CallActive.kind, ConversationEnded.kind})


async def main(database_url: str, node_id: str, documents: str) -> None:
    async def hang(_event: Event) -> None:
        await asyncio.Event().wait()

    handlers = [Handler("probe", HANDLED, hang)]
    async with world(
        database_url, Path(documents), handlers, record_only=RECORD_ONLY, node_id=node_id
    ) as w:
        sessions = w.branch.sessions
        call_id = await w.queued_and_offered()
        # Each step's delivery hangs after its commit: the next step goes on beside it.
        steps = [asyncio.create_task(w.accept(call_id))]
        await until_written(sessions, call_id, CallAccepted.kind)
        steps.append(asyncio.create_task(w.media_up(call_id)))
        await until_written(sessions, call_id, CallActive.kind)
        steps.append(asyncio.create_task(w.end(call_id)))
        await until_written(sessions, call_id, ConversationEnded.kind)
        print("committed", call_id, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
