"""Owning background tasks: cancel, then await, without swallowing our own cancellation."""

from __future__ import annotations

import asyncio

import structlog

log = structlog.get_logger(__name__)


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


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``event``; whether it is set.

    Not ``asyncio.wait_for``: before Python 3.12, a cancellation that arrives as
    the event is set is swallowed (wait_for returns the result instead), and a
    task that loops on it then never stops. A node's dispatcher did so, and held
    the node's shutdown for the whole of its step's bound.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


def cancel_requested() -> bool:
    """Whether the running task was asked to stop and has not stopped.

    A loop that runs until cancelled checks this between rounds: a library that
    turns a ``CancelledError`` into another exception (caught and logged by the
    loop's guard) or returns despite it leaves the request outstanding, and the
    loop would otherwise go on for ever.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def stop_if_cancel_requested(loop: str) -> None:
    """At the top of a loop that runs until cancelled: raise ``CancelledError`` if
    :func:`cancel_requested`, and log which loop's last round had lost it."""
    if cancel_requested():
        log.warning("task.cancel_swallowed", loop=loop)
        raise asyncio.CancelledError
