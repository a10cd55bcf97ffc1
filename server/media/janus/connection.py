"""Keeps one live Janus for a media node: a private process or a configured URL.

:meth:`JanusLink.client` returns the current connection or raises
:class:`~.client.JanusUnavailable`. A watcher notices a dead connection or a dead
private process, tells the node (its calls' legs are gone: the parties will
report the failure and be restarted), then restarts the private process if it
owns one and reconnects with backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from .client import JanusClient, JanusUnavailable
from .config import JanusOptions
from .process import JanusProcess

__all__ = ["JanusLink"]

log = structlog.get_logger(__name__)

RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class JanusLink:
    def __init__(
        self,
        *,
        url: str | None,
        api_secret: str,
        options: JanusOptions,
        request_timeout_s: float = 10.0,
        keepalive_s: float = 20.0,
    ) -> None:
        self._url = url
        self._secret = api_secret
        self._options = options
        self._request_timeout_s = request_timeout_s
        self._keepalive_s = keepalive_s
        self.process: JanusProcess | None = None
        self._client: JanusClient | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopped = False
        self.on_lost: Callable[[], None] | None = None
        # Called once a lost Janus is back (restarted or reconnected).
        self.on_restored: Callable[[], None] | None = None
        self.losses = 0

    @property
    def healthy(self) -> bool:
        return self._client is not None and not self._client.lost.is_set()

    async def start(self) -> None:
        """Start (or reach) Janus; raises when it cannot be had at all."""
        await self._bring_up()
        self._watcher = asyncio.create_task(self._watch(), name="janus-link")

    def client(self) -> JanusClient:
        if self._client is None or self._client.lost.is_set():
            raise JanusUnavailable("Janus is not reachable now")
        return self._client

    async def _bring_up(self) -> None:
        url = self._url
        if url is None:
            if self.process is None or self.process.exited.is_set():
                if self.process is not None:
                    await self.process.stop()
                self.process = JanusProcess(self._options)
                url = await self.process.start()
            else:
                url = self.process.url
        client = JanusClient(
            url,
            self._secret,
            request_timeout_s=self._request_timeout_s,
            keepalive_s=self._keepalive_s,
        )
        await client.connect()
        self._client = client

    async def _watch(self) -> None:
        while not self._stopped:
            client = self._client
            assert client is not None
            waits = [asyncio.ensure_future(client.lost.wait())]
            if self.process is not None:
                waits.append(asyncio.ensure_future(self.process.exited.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            if self._stopped:
                return
            self.losses += 1
            log.warning("janus.lost", private=self.process is not None)
            await client.close()
            if self.on_lost is not None:
                self.on_lost()
            await self._reconnect()

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._stopped:
            try:
                await self._bring_up()
                log.info("janus.reconnected", attempt=attempt)
                if self.on_restored is not None:
                    self.on_restored()
                return
            except (JanusUnavailable, OSError, RuntimeError) as exc:
                delay = RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)]
                log.warning("janus.reconnect_failed", error=str(exc), retry_in_s=delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def close(self) -> None:
        self._stopped = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self.process is not None:
            await self.process.stop()
