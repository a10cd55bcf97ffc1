"""Throttling of guessable secrets: desk passwords and redirect signatures.

Only *failures* count. Before an attempt is looked at, :meth:`Throttle.retry_after`
asks whether any of its keys (the account, the client address) has used up a
tier of its failure budget; if so the attempt is refused with ``429
too_many_attempts`` and a ``Retry-After`` before any password is hashed or any
audit row written. The tiers (``5/minute;10/15 minutes;20/hour`` by default) make
the lock grow with repeated failures: a minute after five, a quarter of an hour
after ten, an hour after twenty, which is exponential back-off in steps.

Counting uses the ``limits`` library's moving windows, on Redis when
``CLOUDBRANCH_REDIS_URL`` is set (so every node shares one count) and in memory
otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from aiohttp import web
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from server.errors import CloudBranchError, ServiceUnavailable
from server.settings import Settings

_STORAGE_TIMEOUT_S = 5.0


class TooManyAttempts(CloudBranchError):
    code, title = "too_many_attempts", "Too many attempts"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many failed attempts; try again in {retry_after_s} s",
            extra={"retry_after_s": retry_after_s},
        )
        self.retry_after_s = retry_after_s


def make_storage(settings: Settings) -> Storage:
    """Shared counts on Redis when configured, else this process's memory."""
    if settings.redis_url:
        uri = settings.redis_url
        uri = "async+" + uri if not uri.startswith("async+") else uri
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        # A pooled connection is dead after a Redis restart: redis-py's own retry
        # reconnects, so the first login after the restart is not refused.
        retry: Any = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3)
        return RedisStorage(
            uri,
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix="cloudbranch-throttle",
            socket_timeout=5,
            socket_connect_timeout=5,
            retry=retry,
            retry_on_error=cast(Any, [RedisConnectionError, RedisTimeoutError]),
        )
    return MemoryStorage()


class Throttle:
    """Failure budgets per scope (``login:account``, ``login:address``, ...)."""

    def __init__(self, storage: Storage, budgets: Mapping[str, str]) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._budgets: dict[str, list[RateLimitItem]] = {
            scope: parse_many(spec) for scope, spec in budgets.items()
        }

    async def retry_after(self, keys: Mapping[str, str]) -> int | None:
        """Seconds until every exhausted tier of ``keys`` has room again; None if none is."""
        async with _storage_guard():
            return await self._retry_after(keys)

    async def _retry_after(self, keys: Mapping[str, str]) -> int | None:
        wait = 0.0
        now = time.time()
        for scope, key in keys.items():
            for item in self._budgets[scope]:
                if not await self._limiter.test(item, scope, key):
                    stats = await self._limiter.get_window_stats(item, scope, key)
                    wait = max(wait, stats.reset_time - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    async def check(self, keys: Mapping[str, str]) -> None:
        """Raise :class:`TooManyAttempts` when any key is locked."""
        wait = await self.retry_after(keys)
        if wait is not None:
            raise TooManyAttempts(wait)

    async def failed(self, keys: Mapping[str, str]) -> None:
        """Count one failure against every tier of every key."""
        async with _storage_guard():
            await asyncio.gather(
                *(
                    self._limiter.hit(item, scope, key)
                    for scope, key in keys.items()
                    for item in self._budgets[scope]
                )
            )

    async def forgive(self, scope: str, key: str) -> None:
        """Forget ``key``'s failures in ``scope`` (an account after a good login)."""
        async with _storage_guard():
            for item in self._budgets[scope]:
                await self._limiter.clear(item, scope, key)


@contextlib.asynccontextmanager
async def _storage_guard() -> AsyncIterator[None]:
    """Counts that cannot be read or written refuse the attempt (fail closed): 503."""
    try:
        async with asyncio.timeout(_STORAGE_TIMEOUT_S):
            yield
    except (StorageError, TimeoutError) as exc:
        raise ServiceUnavailable(
            "attempt counts are unavailable; try again shortly", code="service_unavailable"
        ) from exc


def login_throttle(settings: Settings, storage: Storage) -> Throttle:
    return Throttle(
        storage,
        {
            "login:account": settings.login_account_limits,
            "login:address": settings.login_address_limits,
            "redirect:address": settings.redirect_address_limits,
        },
    )


THROTTLE: web.AppKey[Throttle] = web.AppKey("throttle", Throttle)
