"""Waiting for something the test cannot be told of: polling with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def until(
    check: Callable[[], Awaitable[Any]],
    timeout: float,
    *,
    every_s: float = 0.25,
    what: str = "condition",
) -> Any:
    """Await ``check()`` until it returns something truthy, and return that; fail
    loudly (``AssertionError``) once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        await asyncio.sleep(every_s)
