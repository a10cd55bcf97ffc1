"""Owning background tasks: cancel, then await, without swallowing our own cancellation."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait for it to finish.

    A ``CancelledError`` coming out of ``task`` is the expected result and is
    absorbed; if the *caller* is itself being cancelled meanwhile, that
    cancellation is re-raised rather than lost.
    """
    if task is None:
        return
    if not task.done():
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
