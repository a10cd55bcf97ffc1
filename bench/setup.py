"""Media set-up and idle-socket costs, measured through a real server process.

Part 1: time from the specialist's accept to the first decoded video frame at
both ends, through the server (HTTP accept, ``media.start``, relayed SDP), over
N calls; and in the same run the floor: two aiortc peers connected directly
(same peer code, signaling handed across in-process). Prints medians, p95 and
the ratio.

Part 2: 1,000 customers waiting in the queue connect their WebSockets at once
(a storm) and stay idle: server resident memory per socket, and the time from
one call leaving the queue to every other customer having received its new
``queue.update``.

    .venv/bin/python bench/setup.py [--calls 20] [--sockets 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _verdict import Verdicts  # noqa: E402  (bench/_verdict.py, beside this script)

from tests.api.harness import Api, prepare_template  # noqa: E402
from tests.api.nodes import nodes  # noqa: E402
from tests.e2e.media_client import MediaClient  # noqa: E402
from tests.media.peer import MediaPeer  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def add_bench_customers(database_url: str, count: int) -> list[str]:
    from server.db.engine import make_engine, make_sessionmaker
    from server.db.models import Customer

    ids = [f"B{n:05d}" for n in range(1, count + 1)]
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        for customer_id in ids:
            session.add(
                Customer(
                    customer_id=customer_id,
                    display_name="Bench",
                    age=75,
                    preferred_dialect="cmn",
                    phone=None,
                    contact_consent=True,
                    do_not_call=False,
                    created_at=datetime.now(tz=UTC),
                )
            )
        await session.commit()
    await engine.dispose()
    return ids


async def setup_through_server(api: Api, calls: int) -> list[float]:
    desk_party = await api.specialist("chen.li")
    desk = MediaClient(desk_party)
    await desk.connect()
    await desk_party.put("/api/v1/desk/presence", {"state": "available"})
    times: list[float] = []
    customers = [f"C10{n:02d}" for n in range(1, 21)]
    for index in range(calls):
        customer = MediaClient(await api.customer(customers[index % len(customers)]))
        await customer.connect()
        created = await customer.party.post("/api/v1/calls", {})
        call_id = created.body["call_id"]
        offer = await desk.expect("call.offered", call_id=call_id)
        generation = desk.generation()
        started = time.perf_counter()
        accepted = await desk_party.post(
            f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]}
        )
        assert accepted.status == 200, accepted
        await asyncio.gather(desk.frames_after(generation), customer.frames(1))
        times.append(time.perf_counter() - started)
        await desk_party.post(f"/api/v1/calls/{call_id}/end")
        await desk_party.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "bench"})
        await customer.close()
    await desk.close()
    return times


async def setup_direct(calls: int) -> list[float]:
    times: list[float] = []
    for index in range(calls):
        peers: dict[str, MediaPeer] = {}

        def send_to(other: str, peers: dict[str, MediaPeer] = peers) -> Any:
            async def send(message: dict[str, Any]) -> None:
                if message.get("type") != "media.state":
                    await peers[other].handle(message)

            return send

        peers["offerer"] = MediaPeer("offerer", [], send_to("answerer"))
        peers["answerer"] = MediaPeer("answerer", [], send_to("offerer"))
        call_id = f"direct{index}"
        started = time.perf_counter()
        for role in ("answerer", "offerer"):
            await peers[role].handle(
                {"type": "media.start", "call_id": call_id, "role": role, "ice_servers": []}
            )
        await asyncio.gather(*(p.wait_for_frames(1, timeout=20) for p in peers.values()))
        times.append(time.perf_counter() - started)
        for peer in peers.values():
            await peer.close()
    return times


async def idle_sockets(api: Api, pid: int, customer_ids: list[str]) -> dict[str, float]:
    process = psutil.Process(pid)
    tokens = await asyncio.gather(*(api.token("customer", c) for c in customer_ids))
    semaphore = asyncio.Semaphore(50)

    async def create(token: str) -> str:
        async with semaphore:
            reply = await api.request(
                "POST", "/api/v1/calls", {}, headers={"Authorization": f"Bearer {token}"}
            )
            assert reply.status == 201, reply
            call_id: str = reply.body["call_id"]
            return call_id

    call_ids = [await create(t) for t in tokens]  # in order: positions 1..N
    await asyncio.sleep(1.0)
    rss_before = process.memory_info().rss

    received: dict[int, asyncio.Event] = {}
    settled: dict[int, asyncio.Event] = {}
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task[None]] = []

    async def read(index: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            data = json.loads(msg.data)
            if data.get("type") == "queue.update":
                settled[index].set()
            if data.get("type") == "queue.update" and data.get("position") == index:
                # Position ``index`` (1-based) after the first call left means
                # it moved up by one: the update this part waits for.
                received[index].set()

    connector_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    for index in range(len(tokens)):
        received[index] = asyncio.Event()
        settled[index] = asyncio.Event()

    async def connect(index: int, token: str) -> None:
        ws = await connector_session.ws_connect(api.base_url + "/api/v1/ws", heartbeat=None)
        await ws.send_json({"type": "hello", "token": token})
        sockets.append(ws)
        readers.append(asyncio.create_task(read(index, ws)))

    # A storm: every socket connects and says hello at once. Every socket welcomed
    # and told its place: only then is the queue idle.
    connect_started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(connect(i, t) for i, t in enumerate(tokens))), timeout=120
    )
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in settled.values())), timeout=120)
    connect_s = time.perf_counter() - connect_started
    await asyncio.sleep(1.0)
    rss_after = process.memory_info().rss

    first = call_ids[0]
    started = time.perf_counter()
    reply = await api.request(
        "DELETE", f"/api/v1/calls/{first}", headers={"Authorization": f"Bearer {tokens[0]}"}
    )
    assert reply.status == 204, reply
    await asyncio.wait_for(
        asyncio.gather(*(received[i].wait() for i in range(1, len(tokens)))), timeout=60
    )
    fanout = time.perf_counter() - started
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for ws in sockets:
        await ws.close()
    await connector_session.close()
    return {
        "sockets": len(tokens),
        "rss_before_mib": rss_before / 2**20,
        "rss_after_mib": rss_after / 2**20,
        "kib_per_socket": (rss_after - rss_before) / len(tokens) / 1024,
        "fanout_s": fanout,
        "connect_s": connect_s,
    }


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--log-dir", default=None, help="keep the server's log here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await prepare_template(database_url)
        bench_customers = await add_bench_customers(database_url, args.sockets)
        async with (
            nodes(1, database_url, None, Path(args.log_dir or tmp), log_level="WARNING") as (node,),
            aiohttp.ClientSession() as http,
        ):
            api = Api(node.base_url, http)
            through = await setup_through_server(api, args.calls)
            floor = await setup_direct(args.calls)
            idle = await idle_sockets(api, node.process.pid, bench_customers)

    med_s, med_f = statistics.median(through), statistics.median(floor)
    p95_s, p95_f = pct(through, 0.95), pct(floor, 0.95)
    print(f"media set-up, accept -> first decoded video frame at both ends, {args.calls} calls")
    print(f"  {'':24} {'median ms':>10} {'p95 ms':>10}")
    print(f"  {'through the server':24} {med_s * 1000:>10.1f} {p95_s * 1000:>10.1f}")
    print(f"  {'direct peers (floor)':24} {med_f * 1000:>10.1f} {p95_f * 1000:>10.1f}")
    ratio = f"{med_s / med_f:>10.2f} {p95_s / p95_f:>10.2f}"
    print(f"  {'ratio server/floor':24} {ratio}")
    verdicts = Verdicts()
    verdicts.check(
        "media set-up, median ratio server/floor",
        f"{med_s / med_f:.2f}x",
        "<= 1.5x",
        med_s / med_f <= 1.5,
    )
    print(f"idle customer sockets in the queue: {idle['sockets']}")
    print(f"  all connected at once, welcomed and told their place in {idle['connect_s']:.1f} s")
    print(
        f"  server RSS {idle['rss_before_mib']:.1f} MiB -> {idle['rss_after_mib']:.1f} MiB: "
        f"{idle['kib_per_socket']:.1f} KiB per socket"
    )
    verdicts.check(
        "idle queued socket memory",
        f"{idle['kib_per_socket']:.1f} KiB",
        "< 50 KiB",
        idle["kib_per_socket"] < 50,
    )
    print(
        f"  one queue.update to all (call 1 leaves, all others move up): "
        f"{idle['fanout_s'] * 1000:.0f} ms"
    )
    return verdicts.exit_code()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
