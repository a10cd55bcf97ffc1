"""Janus's WebSocket API: one connection, one Janus session, handles on it.

Every request carries a transaction id and the API secret and is answered
within ``request_timeout_s`` (plugin requests: first an ``ack``, then the
plugin's ``event`` with the same transaction). The session is kept alive with
a ``keepalive`` every ``keepalive_s``; a keep-alive that fails, a socket that
closes or a request that times out sets :attr:`JanusClient.lost`, after which
the owner builds a new client (Janus drops a closed transport's sessions, so
there is nothing to resume on the old one).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import structlog

__all__ = ["JanusClient", "JanusError", "JanusHandle", "JanusUnavailable"]

log = structlog.get_logger(__name__)

HandleEvent = Callable[[Mapping[str, Any]], None]


class JanusUnavailable(Exception):
    """Janus cannot be reached, or stopped answering."""


class JanusError(Exception):
    """Janus (or its plugin) refused a request."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusHandle:
    """One plugin handle: one WebRTC leg."""

    def __init__(self, client: JanusClient, handle_id: int) -> None:
        self.client = client
        self.handle_id = handle_id
        self.on_event: HandleEvent | None = None

    async def message(
        self, body: Mapping[str, Any], jsep: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A plugin request; (the plugin's data, its JSEP if any)."""
        payload: dict[str, Any] = {"janus": "message", "body": dict(body)}
        if jsep is not None:
            payload["jsep"] = dict(jsep)
        reply = await self.client.request(payload, handle_id=self.handle_id)
        data = reply.get("plugindata", {}).get("data", {})
        if "error_code" in data or "error" in data:
            raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "")))
        return data, reply.get("jsep")

    async def trickle(self, candidate: Mapping[str, Any] | None) -> None:
        body = {"completed": True} if candidate is None else dict(candidate)
        await self.client.request(
            {"janus": "trickle", "candidate": body}, handle_id=self.handle_id, ack_only=True
        )

    async def detach(self) -> None:
        self.client._handles.pop(self.handle_id, None)
        if not self.client.lost.is_set():
            with contextlib.suppress(JanusUnavailable, JanusError):
                await self.client.request({"janus": "detach"}, handle_id=self.handle_id)


class JanusClient:
    def __init__(
        self,
        url: str,
        api_secret: str,
        *,
        request_timeout_s: float = 10.0,
        keepalive_s: float = 20.0,
    ) -> None:
        self.url = url
        self._secret = api_secret
        self._timeout = request_timeout_s
        self._keepalive_s = keepalive_s
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, tuple[asyncio.Future[dict[str, Any]], bool]] = {}
        self._handles: dict[int, JanusHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.session_id: int | None = None
        self.lost = asyncio.Event()

    async def connect(self) -> None:
        """Open the socket and a Janus session; JanusUnavailable when it cannot."""
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(
                self.url,
                protocols=("janus-protocol",),
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                heartbeat=self._keepalive_s,
                max_msg_size=4 * 1024 * 1024,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self._http.close()
            raise JanusUnavailable(f"cannot connect to Janus: {exc}") from exc
        self._tasks.append(asyncio.create_task(self._read(), name="janus-read"))
        reply = await self.request({"janus": "create"})
        self.session_id = int(reply["data"]["id"])
        self._tasks.append(asyncio.create_task(self._keepalives(), name="janus-keepalive"))

    async def attach(self, plugin: str) -> JanusHandle:
        reply = await self.request({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(reply["data"]["id"]))
        self._handles[handle.handle_id] = handle
        return handle

    async def request(
        self, payload: dict[str, Any], *, handle_id: int | None = None, ack_only: bool = False
    ) -> dict[str, Any]:
        if self.lost.is_set() or self._ws is None:
            raise JanusUnavailable("the connection to Janus is lost")
        transaction = secrets.token_hex(8)
        message = {**payload, "transaction": transaction, "apisecret": self._secret}
        if self.session_id is not None:
            message["session_id"] = self.session_id
        if handle_id is not None:
            message["handle_id"] = handle_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = (future, ack_only)
        try:
            await self._ws.send_json(message)
            async with asyncio.timeout(self._timeout):
                reply = await future
        except TimeoutError as exc:
            self._mark_lost("request timed out")
            raise JanusUnavailable(f"Janus did not answer {payload['janus']}") from exc
        except (ConnectionError, aiohttp.ClientError) as exc:
            self._mark_lost(str(exc))
            raise JanusUnavailable(str(exc)) from exc
        finally:
            self._pending.pop(transaction, None)
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "")))
        return reply

    async def close(self) -> None:
        """Destroy the session and close the socket; safe twice."""
        if self._ws is not None and not self.lost.is_set() and self.session_id is not None:
            with contextlib.suppress(JanusUnavailable, JanusError):
                await self.request({"janus": "destroy"})
        self._mark_lost("closed")
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    def _mark_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self.lost.set()
        if reason != "closed":
            log.warning("janus.connection_lost", reason=reason)
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(JanusUnavailable(reason))

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for item in self._ws:
                if item.type is not aiohttp.WSMsgType.TEXT:
                    continue
                self._dispatch(item.json())
        finally:
            self._mark_lost("socket closed")

    def _dispatch(self, message: dict[str, Any]) -> None:
        transaction = message.get("transaction")
        pending = self._pending.get(transaction) if isinstance(transaction, str) else None
        kind = message.get("janus")
        if pending is not None:
            future, ack_only = pending
            if kind == "ack" and not ack_only and message.get("hint") is None:
                return  # a plugin request: its event follows with the same transaction
            if not future.done():
                future.set_result(message)
            return
        handle = self._handles.get(int(message.get("sender", 0) or 0))
        if handle is not None and handle.on_event is not None:
            try:
                handle.on_event(message)
            except Exception:  # one handle's listener must not stop the reader
                log.exception("janus.event_listener_failed", kind=kind)

    async def _keepalives(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive_s)
            try:
                await self.request({"janus": "keepalive"}, ack_only=True)
            except (JanusUnavailable, JanusError):
                self._mark_lost("keep-alive failed")
                return
