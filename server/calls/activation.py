"""A call becomes active (its media is up for the first time): who is told, in order.

The media coordinator reports it; the observers that act on it (operations: a
redirect's attempted transfer; integrity: random liveness challenges) are given
here at construction, so the coordinator needs no call service.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import repository as repo
from .service import CallObserver


class CallActivation:
    """``await activation(call_id)`` tells each observer ``call_active``, in order."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], observers: Sequence[CallObserver]
    ) -> None:
        self.sessions = sessions
        self.observers: tuple[CallObserver, ...] = tuple(observers)

    async def __call__(self, call_id: str) -> None:
        async with self.sessions() as session:
            call = await repo.get_call(session, call_id)
        if call is not None:
            for observer in self.observers:
                await observer.call_active(call)
