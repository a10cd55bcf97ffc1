"""A storm of customer sockets: N apps connecting at once, each waiting in the queue.

For each configuration (in-process queue + SQLite; Redis + PostgreSQL), N
customers each have a waiting call (written to SQL; the server queues them at
start-up); then all N open a socket and say ``hello`` at once, and a socket
counts as answered when it has ``welcome`` and its ``queue.update``. Measured
on the server process: wall time to the last answer, server CPU, sockets
dropped (closed or failed before their answer) and resident memory per socket.
The floor, run alternately with the server in the same run on the same
database, is bare aiohttp (``bench/_floor.py``): hello -> JWT check -> one
indexed SELECT -> welcome + queue.update.

Targets: wall and CPU <= 1.5x the floor, 0 dropped, RSS per socket <= 1.3x.

    .venv/bin/python bench/storm.py [--sockets 1000] [--rounds 1] [--only redis+postgres]

Without ``CLOUDBRANCH_TEST_REDIS_URL`` and ``CLOUDBRANCH_TEST_POSTGRES_URL`` it
runs itself under ``tests/services.py`` (throwaway Redis and PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _fleet
from _verdict import Verdicts, with_services

CONFIGS = ("memory+sqlite", "redis+postgres")


async def add_waiting_calls(url: str, customers: list[str]) -> None:
    """A waiting call for each customer, written straight to SQL, in order: every
    server started on the database puts them in its queue at start-up, as after a
    restart. The set-up of a storm, not a measure (creating 5,000 calls through the
    API is a benchmark of its own: bench/create.py)."""
    from server.db.models import Call

    start = datetime.now(tz=UTC)
    rows = [
        {
            "call_id": uuid.uuid4().hex,
            "customer_id": customer_id,
            "state": "queued",
            "priority": "normal",
            "callback_allowed": False,
            "context": {},
            "created_at": start + timedelta(microseconds=index),
            "enqueued_at": start + timedelta(microseconds=index),
            "media_version": 0,
        }
        for index, customer_id in enumerate(customers)
    ]
    await _fleet.insert_rows(url, Call, rows)


async def run_config(
    name: str, sockets: int, rounds: int, tmp: Path
) -> dict[str, list[_fleet.Storm]]:
    db = await _fleet.database(name, tmp)
    customers = await _fleet.add_customers(db.url, sockets)
    await add_waiting_calls(db.url, customers)
    print(f"  {name}: {sockets} calls waiting", flush=True)
    tokens = [_fleet.customer_token(c) for c in customers]
    results: dict[str, list[_fleet.Storm]] = {"server": [], "floor": []}
    async with _fleet.session() as http:
        for round_no in range(rounds):
            for side in ("floor", "server"):
                # A fresh process each time: memory per socket is read from a
                # process that has not held these sockets before.
                context = _fleet.floor(db, tmp) if side == "floor" else _fleet.server(db, tmp)
                async with context as node:
                    path = "/ws" if side == "floor" else "/api/v1/ws"
                    ws_url = node.base_url.replace("http://", "ws://") + path
                    result = await _fleet.storm(http, ws_url, node.process.pid, tokens)
                    await _fleet.close_all(result)
                results[side].append(result)
                print(
                    f"  {name} round {round_no + 1} {side:<6}: wall {result.wall_s:6.2f} s, "
                    f"CPU {result.cpu_s * 1000 / sockets:6.2f} ms/socket, "
                    f"answered {result.answered}, dropped {result.dropped}, "
                    f"RSS {result.rss_per_socket_kib:5.1f} KiB/socket",
                    flush=True,
                )
    return results


def report(
    name: str, sockets: int, results: dict[str, list[_fleet.Storm]], verdicts: Verdicts
) -> None:
    def med(side: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in results[side])

    wall, floor_wall = med("server", "wall_s"), med("floor", "wall_s")
    cpu, floor_cpu = med("server", "cpu_s"), med("floor", "cpu_s")
    mem, floor_mem = med("server", "rss_per_socket_kib"), med("floor", "rss_per_socket_kib")
    dropped = max(r.dropped for r in results["server"])
    print(f"{name}, {sockets} sockets at once (medians over rounds):")
    print(f"  wall   server {wall:7.2f} s        floor {floor_wall:7.2f} s")
    per, floor_per = cpu * 1000 / sockets, floor_cpu * 1000 / sockets
    print(f"  CPU    server {per:7.2f} ms/socket floor {floor_per:7.2f} ms/socket")
    print(f"  RSS    server {mem:7.1f} KiB/socket floor {floor_mem:7.1f} KiB/socket")
    verdicts.check(
        f"{name} wall / floor",
        f"{_fleet.ratio(wall, floor_wall):.2f}x",
        "<= 1.5x",
        _fleet.ratio(wall, floor_wall) <= 1.5,
    )
    verdicts.check(
        f"{name} server CPU / floor",
        f"{_fleet.ratio(cpu, floor_cpu):.2f}x",
        "<= 1.5x",
        _fleet.ratio(cpu, floor_cpu) <= 1.5,
    )
    verdicts.check(f"{name} sockets dropped", str(dropped), "0", dropped == 0)
    verdicts.check(
        f"{name} RSS per socket / floor",
        f"{_fleet.ratio(mem, floor_mem):.2f}x",
        "<= 1.3x",
        _fleet.ratio(mem, floor_mem) <= 1.3,
    )


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", choices=CONFIGS, default=None)
    args = parser.parse_args()
    verdicts = Verdicts()
    with tempfile.TemporaryDirectory() as tmp:
        for name in CONFIGS:
            if args.only and name != args.only:
                continue
            results = await run_config(name, args.sockets, args.rounds, Path(tmp))
            report(name, args.sockets, results, verdicts)
    return verdicts.exit_code()


if __name__ == "__main__":
    with_services()
    sys.exit(asyncio.run(main()))
