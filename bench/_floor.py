"""The floor the server's benchmarks are measured against: bare aiohttp, the least
a server can do for the same event, on the same database through the same engine.

- ``GET /ws``: ``hello`` -> JWT check -> one indexed SELECT (the customer's open
  call) -> ``welcome`` + ``queue.update``;
- ``POST /calls``: JWT check -> one INSERT (a row of its own table) -> 201;
- ``POST /broadcast``: one small message to every open socket.

    python bench/_floor.py --port P --database-url URL --secret S
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import jwt
from aiohttp import WSMsgType, web
from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, text

from server.db.engine import make_engine

METADATA = MetaData()
FLOOR_CALLS = Table(
    "bench_floor_calls",
    METADATA,
    Column("call_id", String(32), primary_key=True),
    Column("customer_id", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def build(database_url: str, secret: str) -> web.Application:
    engine = make_engine(database_url)
    # Callers wait for one of the pool's connections here rather than time out
    # in the pool: a storm is served late, never refused.
    pool_slots = asyncio.Semaphore(10)
    open_call = text(
        # The predicate of the open-call index (uq_calls_open_customer).
        "SELECT call_id, state FROM calls WHERE customer_id = :customer "
        "AND state NOT IN ('ended', 'wrap_up')"
    )

    def subject(token: str) -> str:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer="cloudbranch")
        return str(claims["sub"])

    open_sockets: set[web.WebSocketResponse] = set()

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse(heartbeat=20.0, receive_timeout=None)
        await sock.prepare(request)
        msg = await sock.receive(timeout=30)
        if msg.type is not WSMsgType.TEXT:
            return sock
        customer = subject(json.loads(msg.data)["token"])
        async with pool_slots, engine.connect() as conn:
            row = (await conn.execute(open_call, {"customer": customer})).first()
        await sock.send_json({"type": "welcome", "role": "customer", "subject": customer})
        if row is not None:
            await sock.send_json(
                {
                    "type": "queue.update",
                    "call_id": row[0],
                    "position": 1,
                    "estimated_wait_s": None,
                    "message": {"en": "Please stay on the line."},
                }
            )
        open_sockets.add(sock)
        try:
            async for _ in sock:
                pass
        finally:
            open_sockets.discard(sock)
        return sock

    async def broadcast(_: web.Request) -> web.Response:
        """One small message to every socket: what a queue move must send at least."""
        for index, sock in enumerate(list(open_sockets)):
            await sock.send_json({"type": "queue.update", "position": index + 1})
        return web.json_response({"sent": len(open_sockets)})

    async def calls(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        customer = subject(header.removeprefix("Bearer "))
        await request.read()
        call_id = uuid.uuid4().hex
        async with pool_slots, engine.begin() as conn:
            await conn.execute(
                insert(FLOOR_CALLS).values(
                    call_id=call_id,
                    customer_id=customer,
                    created_at=_utc(time.time()),
                )
            )
        return web.json_response({"call_id": call_id, "state": "queued"}, status=201)

    async def readyz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def lifecycle(_: web.Application) -> Any:
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)
        yield
        await engine.dispose()

    app = web.Application()
    app.router.add_get("/ws", ws)
    app.router.add_post("/calls", calls)
    app.router.add_post("/broadcast", broadcast)
    app.router.add_get("/readyz", readyz)
    app.cleanup_ctx.append(lifecycle)
    return app


def _utc(now: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(now, tz=UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    web.run_app(
        build(args.database_url, args.secret),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
