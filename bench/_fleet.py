"""What the server benchmarks share: databases, processes, tokens and a socket storm.

Each benchmark runs the real server (``cloudbranch serve``, a process of its own)
and its floor (``bench/_floor.py``, bare aiohttp) on the same database, one after
the other in the same run, and reads their CPU time and memory with psutil.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.harness import prepare_template  # noqa: E402
from tests.api.nodes import Node, free_port, nodes, wait_ready  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
# What every benchmarked server runs with: the shipped defaults, except what a
# benchmark must hold still (no call abandoned or timed out while it runs).
SERVER_SETTINGS = {
    "jwt_secret": SECRET,
    "dispatch_interval_s": "0.25",
    "abandon_after_s": "36000",
    "max_queue_wait_s": "36000",
    "log_level": "WARNING",
    "login_account_limits": "100000/minute",
    "login_address_limits": "100000/minute",
}


@dataclass
class Database:
    name: str  # "memory+sqlite" or "redis+postgres"
    url: str
    redis_url: str | None


async def _create_postgres_database(base_url: str) -> str:
    import asyncpg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    plain = base_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base_url.rsplit("/", 1)[0] + "/" + name


async def flush_redis(url: str) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def database(name: str, tmp: Path) -> Database:
    """A fresh, migrated and seeded database for ``name``'s configuration."""
    if name == "memory+sqlite":
        url = f"sqlite+aiosqlite:///{tmp}/{uuid.uuid4().hex[:8]}.db"
        redis_url = None
    else:
        url = await _create_postgres_database(os.environ["CLOUDBRANCH_TEST_POSTGRES_URL"])
        redis_url = os.environ["CLOUDBRANCH_TEST_REDIS_URL"]
        await flush_redis(redis_url)
    await prepare_template(url)
    return Database(name, url, redis_url)


async def insert_rows(url: str, model: Any, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` of ``model``'s table in one transaction (a benchmark's set-up)."""
    from sqlalchemy import insert

    from server.db.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(model), rows)
    finally:
        await engine.dispose()


async def add_customers(url: str, count: int, prefix: str = "B") -> list[str]:
    from server.db.models import Customer

    ids = [f"{prefix}{n:06d}" for n in range(1, count + 1)]
    now = datetime.now(tz=UTC)
    rows = [
        {
            "customer_id": c,
            "display_name": "Bench",
            "age": 75,
            "preferred_dialect": "cmn",
            "phone": None,
            "contact_consent": True,
            "do_not_call": False,
            "created_at": now,
        }
        for c in ids
    ]
    await insert_rows(url, Customer, rows)
    return ids


def customer_token(subject: str) -> str:
    import jwt

    now = int(time.time())
    claims = {
        "iss": "cloudbranch",
        "sub": subject,
        "role": "customer",
        "iat": now,
        "exp": now + 7200,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


@asynccontextmanager
async def server(db: Database, log_dir: Path, **extra: str) -> AsyncIterator[Node]:
    """One ``cloudbranch serve`` process (the multi-node tests' start-up); on a
    loaded machine (or rebuilding a large queue) it may take minutes to be ready."""
    settings = {**SERVER_SETTINGS, **extra}
    async with nodes(1, db.url, db.redis_url, log_dir, ready_timeout_s=300, **settings) as (node,):
        yield node


@asynccontextmanager
async def floor(db: Database, log_dir: Path) -> AsyncIterator[Node]:
    port = free_port()
    log_path = log_dir / "floor.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: ASYNC220
            [
                sys.executable,
                str(ROOT / "bench" / "_floor.py"),
                "--port",
                str(port),
                "--database-url",
                db.url,
                "--secret",
                SECRET,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    node = Node("floor", f"http://127.0.0.1:{port}", process, log_path)
    try:
        await wait_ready(node, 60)
        yield node
    finally:
        await _stop(process, 15)


async def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Terminate, then kill what is still running after ``timeout_s``."""
    process.terminate()
    try:
        await asyncio.to_thread(process.wait, timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait)


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@dataclass(frozen=True)
class Collections:
    """A server's garbage collections so far (its ``cloudbranch_gc_pause_seconds``)."""

    full: int
    seconds: float  # all generations
    over_50ms: int  # pauses of the event loop longer than 50 ms

    def since(self, before: Collections) -> Collections:
        return Collections(
            self.full - before.full,
            self.seconds - before.seconds,
            self.over_50ms - before.over_50ms,
        )


async def collections(http: aiohttp.ClientSession, base_url: str) -> Collections:
    """Read the server's collections from its /metrics (development mode: no token)."""
    async with http.get(base_url + "/metrics") as r:
        text = await r.text()
    full, seconds, total, within = 0.0, 0.0, 0.0, 0.0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith('cloudbranch_gc_pause_seconds_count{generation="2"'):
            full = float(value)
        if name.startswith("cloudbranch_gc_pause_seconds_sum"):
            seconds += float(value)
        elif name.startswith("cloudbranch_gc_pause_seconds_count"):
            total += float(value)
        elif name.startswith("cloudbranch_gc_pause_seconds_bucket") and 'le="0.05"' in name:
            within += float(value)
    return Collections(int(full), seconds, int(total - within))


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


@dataclass
class Storm:
    wall_s: float
    cpu_s: float
    answered: int
    dropped: int
    rss_per_socket_kib: float
    sockets: list[aiohttp.ClientWebSocketResponse]
    readers: list[asyncio.Task[None]]


async def storm(
    http: aiohttp.ClientSession,
    ws_url: str,
    pid: int,
    tokens: list[str],
    timeout_s: float = 120,
    seen: list[int] | None = None,
) -> Storm:
    """Every socket connects and says hello at once; each is answered when it has
    its ``queue.update``. A socket closed (or failed) before that is dropped."""
    await asyncio.sleep(0.5)
    rss_before = rss(pid)
    answered: list[aiohttp.ClientWebSocketResponse] = []
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task[None]] = []
    dropped = 0
    last = 0.0

    async def one(token: str) -> None:
        nonlocal dropped, last
        try:
            async with asyncio.timeout(timeout_s):
                ws = await http.ws_connect(ws_url, heartbeat=None)
                sockets.append(ws)
                await ws.send_str(json.dumps({"type": "hello", "token": token}))
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT and '"queue.update"' in msg.data:
                        answered.append(ws)
                        last = time.perf_counter()
                        readers.append(asyncio.create_task(_drain(ws, seen)))
                        return
            dropped += 1  # closed before it was told its place
        except (aiohttp.ClientError, OSError, TimeoutError):
            dropped += 1

    cpu_before = cpu_s(pid)
    started = time.perf_counter()
    await asyncio.gather(*(one(t) for t in tokens))
    cpu_used = cpu_s(pid) - cpu_before
    await asyncio.sleep(1.0)
    per_socket = (rss(pid) - rss_before) / max(1, len(answered)) / 1024
    return Storm(
        (last or time.perf_counter()) - started,
        cpu_used,
        len(answered),
        dropped,
        per_socket,
        sockets,
        readers,
    )


async def _drain(ws: aiohttp.ClientWebSocketResponse, seen: list[int] | None) -> None:
    """Read until closed; ``seen[0]`` counts the ``queue.update`` messages."""
    async for msg in ws:
        if seen is not None and msg.type is aiohttp.WSMsgType.TEXT and '"queue.update"' in msg.data:
            seen[0] += 1


async def close_all(result: Storm) -> None:
    for task in result.readers:
        task.cancel()
    await asyncio.gather(*result.readers, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in result.sockets), return_exceptions=True)


async def create_calls(
    http: aiohttp.ClientSession, url: str, tokens: list[str], concurrency: int = 50
) -> tuple[float, dict[int, int]]:
    """POST a call for every token, ``concurrency`` at a time: (wall s, statuses)."""
    semaphore = asyncio.Semaphore(concurrency)
    statuses: dict[int, int] = {}

    async def one(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with semaphore, http.post(url, json={}, headers=headers) as r:
                await r.read()
                status = r.status
        except (aiohttp.ClientError, OSError):
            status = 0  # the connection failed (counted: 0)
        statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(t) for t in tokens))
    return time.perf_counter() - started, statuses


def ratio(value: float, floor_value: float) -> float:
    return value / floor_value if floor_value > 0 else float("inf")


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
