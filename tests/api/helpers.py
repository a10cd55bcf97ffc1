"""Helpers shared by the API test modules, on top of :mod:`tests.api.harness`.

- :func:`assert_problem`: a reply is an RFC 9457 problem with the given status and code.
- :func:`dispatcher_passes`: wait until the server's dispatcher has run whole passes.
- :func:`expect_silence`: nothing of a kind arrives on a socket while the dispatcher
  runs a few passes.
- :func:`seeded_database`: one seeded database of a chosen kind, for modules that
  override the ``database_url`` fixture to run on SQLite only (the database does
  not change what they test) and opt single tests into PostgreSQL.
- :class:`ServerThread` and :func:`http`: a server on a loopback port driven by a
  thread of its own, and a blocking client for it, so property-based tests
  (hypothesis runs synchronous test functions) can share one server for many
  examples instead of starting one per example.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.appkeys import DISPATCHER
from tests.api.harness import Reply, RunningServer, Socket, clone_sqlite, running_server
from tests.plugin.databases import clone_name, postgres_clone

PROBLEM_TYPE = "application/problem+json"


def assert_problem(
    reply: Reply, status: int, code: str | None = None, what: object = None
) -> dict[str, Any]:
    """``reply`` is a problem+json document with ``status`` (and ``code``); returns it.

    ``what`` says which request this was, for the failure message.
    """
    assert reply.status == status, (what, reply)
    assert reply.headers.get("Content-Type", "").startswith(PROBLEM_TYPE), (what, reply)
    body = reply.body
    assert isinstance(body, dict), (what, reply)
    assert body["status"] == status, (what, reply)
    assert isinstance(body["title"], str) and body["title"], (what, reply)
    assert isinstance(body["detail"], str) and body["detail"], (what, reply)
    assert body["type"].endswith("/" + body["code"]), (what, reply)
    if code is not None:
        assert body["code"] == code, (what, reply)
    return body


async def dispatcher_passes(server: RunningServer, passes: int = 2, timeout: float = 20.0) -> int:
    """Return once the server's dispatcher has completed ``passes`` more passes.

    Two are enough for "a whole pass saw the change made before this call"
    (:class:`server.calls.dispatcher.PassCounter`). Bounded, so a dispatcher that
    stopped fails the test instead of hanging it.
    """
    async with asyncio.timeout(timeout):
        return await server.app[DISPATCHER].passes.wait(passes)


async def expect_silence(
    socket: Socket, kind: str, server: RunningServer, passes: int = 3, **match: Any
) -> list[dict[str, Any]]:
    """Fail if a ``kind`` message (matching) reaches ``socket`` before the dispatcher
    has completed ``passes`` more passes and a ping sent after them is answered.

    Returns what did arrive (the pong last). Used for "no offer is made": each pass
    is a chance to make it, and the server writes a socket's messages in order, so
    anything a pass sent to this socket arrives before the pong.
    """
    await dispatcher_passes(server, passes)
    await socket.send({"type": "ping"})
    seen: list[dict[str, Any]] = []
    while True:
        message = await socket.next(timeout=10)
        seen.append(message)
        if message.get("type") == kind and all(message.get(k) == v for k, v in match.items()):
            raise AssertionError(f"unexpected {kind}: {message}")
        if message.get("type") == "pong":
            return seen


async def ping_pong(socket: Socket) -> None:
    """The socket is open and served: a ping is answered with a pong."""
    await socket.send({"type": "ping"})
    await socket.expect("pong", timeout=5)


async def closed_with(socket: Socket, within: float = 5.0) -> int | None:
    """Wait (up to ``within`` seconds) for the server to close ``socket``; the close code."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (remaining := deadline - loop.time()) > 0:
        msg = await socket.ws.receive(timeout=remaining)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return socket.ws.close_code
        if msg.type is aiohttp.WSMsgType.ERROR:
            return socket.ws.close_code
    raise TimeoutError(f"socket still open after {within}s")


async def staff_session_token(server: RunningServer, staff_id: str, role: str) -> str:
    """A token for a real staff session, opened by the server's own session store, as
    login does; outside development mode that is the only kind of staff token accepted.

    ``staff_id`` gets a staff row if it has none (a supervisor, say): revocation is
    keyed by the row.
    """
    from datetime import UTC, datetime

    from server.appkeys import CALLS
    from server.auth.principal import Role
    from server.auth.staff import STAFF_ACCESS
    from server.db.models import Specialist

    async with server.app[CALLS].sessions() as session:
        if await session.get(Specialist, staff_id) is None:
            row = Specialist(
                specialist_id=staff_id,
                username=staff_id.lower(),
                display_name=staff_id,
                password_hash="!",
                skills=[],
                active=True,
                created_at=datetime.now(tz=UTC),
            )
            if hasattr(Specialist, "role"):
                row.role = role  # type: ignore[attr-defined]
            session.add(row)
        issued = await server.app[STAFF_ACCESS].open_session(session, staff_id, Role(role))
        await session.commit()
    return issued.token


async def close_frame_code(socket: Socket, within: float = 10.0) -> int | None:
    """The code in the server's close frame, read off the wire (messages before it
    are kept in ``socket.received``).

    Unlike ``ws.close_code``, this does not turn into 1006 when the server has
    already dropped the connection by the time the client's own close reply goes
    out, which happens when the client was busy while the server closed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (remaining := deadline - loop.time()) > 0:
        msg = await socket.ws.receive(timeout=remaining)
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return socket.ws.close_code
        if msg.type is aiohttp.WSMsgType.TEXT:
            socket.received.append(json.loads(msg.data))
    raise TimeoutError(f"socket still open after {within}s")


# --------------------------------------------------------------------------- databases

_counter = iter(range(1_000_000))


@contextmanager
def seeded_database(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[str]:
    """A freshly seeded database of ``kind`` (``sqlite`` or ``postgres``), cloned from
    the session's template; a PostgreSQL clone is dropped afterwards."""
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        yield clone_sqlite(template, tmp_path / f"cb-{next(_counter)}.db")
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    pg_template: str = request.getfixturevalue("postgres_template")
    with postgres_clone(postgres_url, pg_template, clone_name("cb_helper", tmp_path.name)) as url:
        yield url


BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


# --------------------------------------------------------------------------- threaded server


class ServerThread:
    """A Cloud Branch server running on an event loop in a thread of its own.

    Use as a context manager; ``base_url`` is set once it listens. Stopping sets an
    event on the server's loop, so the harness shuts the app down in order.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.base_url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="api-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout=60):
            raise TimeoutError("server thread did not start within 60 s")
        if self._error is not None:
            raise RuntimeError("server thread failed to start") from self._error
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "server thread did not stop"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_server(**self.settings) as handle:
            self.base_url = handle.base_url
            self._ready.set()
            await self._stop.wait()


def http(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> Reply:
    """A blocking request; any status comes back as a :class:`Reply` (never raises on 4xx/5xx)."""
    request = urllib.request.Request(
        base_url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, reply_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        status, raw, reply_headers = exc.code, exc.read(), exc.headers
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = text
    return Reply(status, parsed, dict(reply_headers.items()))
