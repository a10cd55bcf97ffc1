"""Creating calls, and whole call cycles, through the real server against a bare handler.

For each configuration (in-process queue + SQLite; Redis + PostgreSQL):

1. ``POST /api/v1/calls`` for N customers, 50 at a time: calls created per second.
   The floor, run alternately in the same run on the same database through the
   same engine, is a bare aiohttp handler doing one INSERT (``bench/_floor.py``).
2. Full cycles, create -> offer -> accept -> end -> wrap-up, with 50 specialists
   at their desks (real sockets): cycles per second. A cycle is five writes, so
   its floor is the INSERT floor divided by five.

Targets: create >= 0.5x the floor, cycles >= 0.4x (floor / 5), every call of
the cycle run created and cycled, and PostgreSQL not slower than SQLite (calls
and cycles per second, in the same run). Rates count created calls (201) only.

    .venv/bin/python bench/create.py [--calls 1000] [--cycles 500] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _fleet
import aiohttp
from _verdict import Verdicts, with_services

CONFIGS = ("memory+sqlite", "redis+postgres")
DESKS = 50


async def add_specialists(url: str, count: int) -> list[str]:
    from sqlalchemy import insert

    from server.auth.passwords import hash_password
    from server.db.engine import make_engine
    from server.db.models import Specialist, SpecialistDialect

    digest = hash_password("bench-password")
    names = [f"bench.{n:03d}" for n in range(count)]
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(Specialist),
                [
                    {
                        "specialist_id": f"BS{n:03d}",
                        "username": name,
                        "display_name": "Bench",
                        "password_hash": digest,
                        "skills": [],
                        "active": True,
                        "created_at": datetime.now(tz=UTC),
                        "role": "specialist",
                    }
                    for n, name in enumerate(names)
                ],
            )
            await conn.execute(
                insert(SpecialistDialect),
                [
                    {"specialist_id": f"BS{n:03d}", "dialect": "cmn", "proficiency": 5}
                    for n in range(count)
                ],
            )
    finally:
        await engine.dispose()
    return names


class Desk:
    def __init__(self, http: aiohttp.ClientSession, base: str, username: str) -> None:
        self.http, self.base, self.username = http, base, username
        self.headers: dict[str, str] = {}
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self) -> None:
        async with self.http.post(
            self.base + "/api/v1/desk/login",
            json={"username": self.username, "password": "bench-password"},
        ) as r:
            body = await r.json()
            assert r.status == 200, body
        self.headers = {"Authorization": f"Bearer {body['token']}"}
        self.ws = await self.http.ws_connect(
            self.base.replace("http", "ws") + "/api/v1/ws", heartbeat=None
        )
        await self.ws.send_json({"type": "hello", "token": body["token"]})
        async with self.http.put(
            self.base + "/api/v1/desk/presence", json={"state": "available"}, headers=self.headers
        ) as r:
            assert r.status == 200, await r.text()

    async def post(self, path: str, body: dict[str, Any] | None = None) -> int:
        async with self.http.post(self.base + path, json=body or {}, headers=self.headers) as r:
            await r.read()
            return r.status

    async def work(self, done: list[float], target: int) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            data = msg.json()
            if data.get("type") != "call.offered":
                continue
            call = f"/api/v1/calls/{data['call_id']}"
            if await self.post(call + "/accept", {"offer_id": data["offer_id"]}) != 200:
                continue
            await self.post(call + "/end")
            await self.post(call + "/wrap-up", {"code": "bench"})
            done.append(time.perf_counter())
            if len(done) >= target:
                return


async def cycles(
    db: _fleet.Database, tmp: Path, http: aiohttp.ClientSession, tokens: list[str]
) -> tuple[float, int, int]:
    """(wall s until the last call was wrapped up, calls cycled, calls created)."""
    async with _fleet.server(db, tmp) as node:
        desks = [Desk(http, node.base_url, f"bench.{n:03d}") for n in range(DESKS)]
        for desk in desks:
            await desk.open()
        done: list[float] = []
        workers = [asyncio.create_task(d.work(done, len(tokens))) for d in desks]
        started = time.perf_counter()
        creating = asyncio.create_task(
            _fleet.create_calls(http, node.base_url + "/api/v1/calls", tokens)
        )
        created = 0
        try:
            _, statuses = await creating
            created = statuses.get(201, 0)
            # Every call created is cycled; stop if none finishes for a minute.
            await _until(done, created, stall_s=60)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, creating, return_exceptions=True)
            for desk in desks:
                if desk.ws is not None:
                    await desk.ws.close()
        return (max(done) if done else time.perf_counter()) - started, len(done), created


async def _until(done: list[float], target: int, stall_s: float) -> None:
    last, since = len(done), time.monotonic()
    while len(done) < target:
        await asyncio.sleep(0.05)
        if len(done) != last:
            last, since = len(done), time.monotonic()
        elif time.monotonic() - since > stall_s:
            print(f"  (cycles stalled at {len(done)} of {target})", flush=True)
            return


async def run_config(
    name: str, calls: int, cycle_count: int, rounds: int, tmp: Path
) -> dict[str, float]:
    db = await _fleet.database(name, tmp)
    customers = await _fleet.add_customers(db.url, calls * rounds)
    tokens = [_fleet.customer_token(c) for c in customers]
    rates: dict[str, list[float]] = {"server": [], "floor": []}
    async with _fleet.session() as http:
        for round_no in range(rounds):
            batch = tokens[round_no * calls : (round_no + 1) * calls]
            for side in ("floor", "server"):
                context = _fleet.floor(db, tmp) if side == "floor" else _fleet.server(db, tmp)
                async with context as node:
                    path = "/calls" if side == "floor" else "/api/v1/calls"
                    took, statuses = await _fleet.create_calls(http, node.base_url + path, batch)
                # Only calls created count: a quick refusal is not a fast create.
                rate = statuses.get(201, 0) / took
                rates[side].append(rate)
                print(
                    f"  {name} round {round_no + 1} create {side:<6}: {rate:7.1f}/s {statuses}",
                    flush=True,
                )
        # The cycles run on a database of their own: the calls the create rounds
        # left waiting would otherwise be offered, and cycled, among them.
        cycle_db = await _fleet.database(name, tmp)
        cycle_tokens = [
            _fleet.customer_token(c) for c in await _fleet.add_customers(cycle_db.url, cycle_count)
        ]
        await add_specialists(cycle_db.url, DESKS)
        took, completed, created = await cycles(cycle_db, tmp, http, cycle_tokens)
        print(f"  {name} cycles: {completed} of {created} created in {took:.1f} s", flush=True)
    return {
        "create": statistics.median(rates["server"]),
        "floor": statistics.median(rates["floor"]),
        "cycles": completed / took,
        # A run that stalled has a rate over the calls it did finish only;
        # a call not created is not cycled either.
        "cycles_missing": len(cycle_tokens) - completed,
    }


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    verdicts = Verdicts()
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CONFIGS:
            figures[name] = await run_config(name, args.calls, args.cycles, args.rounds, Path(tmp))
    for name, f in figures.items():
        create_ratio = f["create"] / f["floor"]
        cycle_ratio = f["cycles"] / (f["floor"] / 5)
        f["create_ratio"], f["cycle_ratio"] = create_ratio, cycle_ratio
        print(
            f"{name}: create {f['create']:.1f}/s, floor (one INSERT) {f['floor']:.1f}/s; "
            f"cycles {f['cycles']:.1f}/s, floor / 5 = {f['floor'] / 5:.1f}/s"
        )
        verdicts.check(
            f"{name} create / floor", f"{create_ratio:.2f}x", ">= 0.5x", create_ratio >= 0.5
        )
        verdicts.check(
            f"{name} cycles / (floor / 5)", f"{cycle_ratio:.2f}x", ">= 0.4x", cycle_ratio >= 0.4
        )
        missing = int(f["cycles_missing"])
        verdicts.check(f"{name} calls not cycled", str(missing), "0", missing == 0)
    sqlite, postgres = figures["memory+sqlite"], figures["redis+postgres"]
    for measure in ("create", "cycles"):
        verdicts.check(
            f"PostgreSQL against SQLite, {measure} per second",
            f"{postgres[measure]:.1f}/s vs {sqlite[measure]:.1f}/s",
            "PostgreSQL not slower",
            postgres[measure] >= sqlite[measure],
        )
    return verdicts.exit_code()


if __name__ == "__main__":
    with_services()
    sys.exit(asyncio.run(main()))
