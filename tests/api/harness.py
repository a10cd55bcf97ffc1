"""Test harness: a real Cloud Branch server on a loopback port, and clients for it.

Databases are prepared once per session as a migrated, seeded *template* and
cloned per test (a file copy for SQLite, ``CREATE DATABASE ... TEMPLATE`` for
PostgreSQL), so each test starts from the same clean, seeded state quickly.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from server.app import create_app
from server.hub.protocol import server_messages
from server.settings import Settings

TEST_SETTINGS: dict[str, Any] = {
    "dev_mode": True,
    "dispatch_interval_s": 0.05,
    "log_level": "WARNING",
    "log_format": "console",
    # Every answer of a registered route is checked against its declared model.
    "check_responses": True,
}


async def prepare_template(database_url: str) -> None:
    """Migrate and seed the template database."""
    from server.db.engine import make_engine, make_sessionmaker
    from server.db.migrate import upgrade_async
    from server.seed import seed

    await upgrade_async(database_url)
    engine = make_engine(database_url)
    try:
        await seed(make_sessionmaker(engine))
    finally:
        await engine.dispose()


def clone_sqlite(template: Path, target: Path) -> str:
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


@dataclass
class RunningServer:
    app: web.Application
    base_url: str
    settings: Settings
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


@asynccontextmanager
async def running_server(**overrides: Any) -> AsyncIterator[RunningServer]:
    # A spool of its own: a shared one would make every server start salvage what
    # other tests' servers left there (each file a read, a hash and a lookup).
    own_spool = None
    if "recording_spool_dir" not in overrides:
        own_spool = tempfile.mkdtemp(prefix="cb-spool-")
        overrides = {**overrides, "recording_spool_dir": own_spool}
    settings = Settings(**{**TEST_SETTINGS, **overrides})
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    port = server.sockets[0].getsockname()[1]
    handle = RunningServer(app, f"http://127.0.0.1:{port}", settings, runner)
    try:
        yield handle
    finally:
        cleanup = asyncio.ensure_future(runner.cleanup())
        done, _ = await asyncio.wait({cleanup}, timeout=20)
        if not done:
            # Shutting down must be bounded; if it is not, say exactly what waits.
            for task in asyncio.all_tasks():
                task.print_stack(limit=12)
            await cleanup
        if own_spool is not None:
            shutil.rmtree(own_spool, ignore_errors=True)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@dataclass
class Party:
    """One authenticated user of the API (customer, specialist or supervisor)."""

    api: Api
    role: str
    subject: str
    token: str
    sockets: list[Socket] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def request(self, method: str, path: str, json_body: Any = None, **kw: Any) -> Reply:
        return await self.api.request(method, path, json_body, headers=self.headers(), **kw)

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post(self, path: str, json_body: Any = None) -> Reply:
        return await self.request("POST", path, json_body)

    async def put(self, path: str, json_body: Any = None) -> Reply:
        return await self.request("PUT", path, json_body)

    async def delete(self, path: str) -> Reply:
        return await self.request("DELETE", path)

    async def connect(self) -> Socket:
        socket = await self.api.socket()
        welcome = await socket.hello(self.token)
        assert welcome["type"] == "welcome", welcome
        self.sockets.append(socket)
        return socket


class Socket:
    """A client WebSocket with a reader that keeps every message for later asserts."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self._cursor = 0

    async def hello(self, token: str) -> dict[str, Any]:
        await self.ws.send_json({"type": "hello", "token": token})
        return await self.next()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_json(message)

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            # The server's own close code and reason (msg.data, msg.extra) say which
            # path closed it; ws.close_code may only tell how the reply went.
            kinds = [m.get("type") for m in self.received[-8:]]
            raise ConnectionError(
                f"socket closed: {msg.type.name} data={msg.data!r} extra={msg.extra!r} "
                f"close_code={self.ws.close_code}; last received: {kinds}"
            )
        data: dict[str, Any] = json.loads(msg.data)
        # Every message must match the published protocol (GET /api/v1/schemas/ws.json).
        server_messages.validate_python(data)
        self.received.append(data)
        return data

    async def expect(self, kind: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """Next message of type ``kind`` (and matching fields), skipping others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} {match} within {timeout}s; got {self.received}")
            message = await self.next(timeout=remaining)
            if message.get("type") == kind and all(message.get(k) == v for k, v in match.items()):
                return message

    async def close(self) -> None:
        await self.ws.close()


class Api:
    """HTTP access to one running server, and factories for parties."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if data is not None:
            kwargs["data"] = data
        elif json_body is not None:
            kwargs["json"] = json_body
        async with self.session.request(method, self.base_url + path, **kwargs) as response:
            text = await response.text()
            try:
                body: Any = json.loads(text) if text else None
            except json.JSONDecodeError:
                body = text
            return Reply(response.status, body, dict(response.headers))

    async def token(self, role: str, subject: str) -> str:
        reply = await self.request("POST", "/api/v1/dev/tokens", {"role": role, "subject": subject})
        assert reply.status == 201, reply
        token: str = reply.body["token"]
        return token

    async def customer(self, subject: str = "C1001") -> Party:
        return Party(self, "customer", subject, await self.token("customer", subject))

    async def supervisor(self, subject: str = "SUP1") -> Party:
        return Party(self, "supervisor", subject, await self.token("supervisor", subject))

    async def specialist(self, username: str = "chen.li", password: str = "branch-demo") -> Party:
        reply = await self.request(
            "POST", "/api/v1/desk/login", {"username": username, "password": password}
        )
        assert reply.status == 200, reply
        return Party(self, "specialist", reply.body["specialist_id"], reply.body["token"])

    async def available_specialist(self, username: str = "chen.li") -> tuple[Party, Socket]:
        """A specialist logged in, with the desk socket open and presence available."""
        desk = await self.specialist(username)
        socket = await desk.connect()
        reply = await desk.put("/api/v1/desk/presence", {"state": "available"})
        assert reply.status == 200, reply
        return desk, socket

    async def socket(self) -> Socket:
        ws = await self.session.ws_connect(self.base_url + "/api/v1/ws", heartbeat=None)
        return Socket(ws)
