"""SQL statements and commits per step of one call, through the real server.

One customer's call is created, offered, accepted, ended and wrapped up on an
in-process server over a seeded SQLite copy (media peer to peer, no video
analysis), and every statement the server's engine runs is counted, per step:
what a step costs in round trips, which `bench/create.py` turns into calls per
second. Each step's window runs until the step's effects are done (the desk
got the offer; 0.3 s more for the handlers the outbox runs after a reply), so
background work that falls into a window (dispatcher passes, the staff sweep)
is counted too: the last line, one idle second, shows how much that is.

Figures only, no targets (a count has no floor to be measured against).

    .venv/bin/python bench/statements.py [--calls 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.appkeys import COMPONENTS
from tests.api.harness import Api, clone_sqlite, prepare_template, running_server

STEPS = ("create + offer", "accept", "end", "wrap-up", "idle 1 s")
SETTLE_S = 0.3


class Counts:
    """Statements and commits the engine ran since the last :meth:`take`."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.commits = 0

    def statement(self, text: str) -> None:
        self.statements[text.split(None, 3)[0].upper()] += 1

    def take(self) -> tuple[int, int, dict[str, int]]:
        taken = (sum(self.statements.values()), self.commits, dict(self.statements))
        self.statements.clear()
        self.commits = 0
        return taken


async def one_call(
    api: Api, counts: Counts, customer_id: str
) -> list[tuple[int, int, dict[str, int]]]:
    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer(customer_id)
    await customer.connect()
    await asyncio.sleep(1.0)  # the connects' own reads are not a step of the call
    counts.take()
    taken = []
    created = await customer.post("/api/v1/calls", {"intent": "other"})
    assert created.status == 201, created
    call_id = created.body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=call_id)
    await asyncio.sleep(SETTLE_S)
    taken.append(counts.take())
    path = f"/api/v1/calls/{call_id}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/accept", {"offer_id": offer["offer_id"]}),
        ("/end", {}),
        ("/wrap-up", {"code": "balance_inquiry"}),
    ]
    for suffix, body in steps:
        reply = await desk.post(path + suffix, body)
        assert reply.status == 200, reply
        await asyncio.sleep(SETTLE_S)
        taken.append(counts.take())
    await asyncio.sleep(1.0)
    taken.append(counts.take())
    for socket in desk.sockets + customer.sockets:
        await socket.ws.close()
    await desk.put("/api/v1/desk/presence", {"state": "away"})
    return taken


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3, help="calls measured, one after another")
    args = parser.parse_args()
    customers = ["C1001", "C1002", "C1003", "C1004", "C1005", "C1006"][: max(1, args.calls)]
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        await prepare_template(f"sqlite+aiosqlite:///{template}")
        url = clone_sqlite(template, Path(tmp) / "bench.db")
        settings = {"media_mode": "direct", "integrity_enabled": False}
        async with running_server(database_url=url, **settings) as server:
            engine = server.app[COMPONENTS].engine.sync_engine
            counts = Counts()
            event.listen(engine, "before_cursor_execute", lambda *a, **k: counts.statement(a[2]))

            def committed(_conn: object) -> None:
                counts.commits += 1

            event.listen(engine, "commit", committed)
            timeout = aiohttp.ClientTimeout(total=20)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                api = Api(server.base_url, session)
                runs = [await one_call(api, counts, c) for c in customers]
    print(f"SQL per step of a call, SQLite, {len(runs)} calls (median; min-max):")
    for index, step in enumerate(STEPS):
        statements = [run[index][0] for run in runs]
        commits = [run[index][1] for run in runs]
        kinds: Counter[str] = Counter()
        for run in runs:
            kinds.update(run[index][2])
        mix = ", ".join(f"{k} {v / len(runs):.0f}" for k, v in kinds.most_common())
        print(
            f"  {step:15} statements {statistics.median(statements):4.0f} "
            f"({min(statements)}-{max(statements)}), commits {statistics.median(commits):3.0f} "
            f"({min(commits)}-{max(commits)}); {mix}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
