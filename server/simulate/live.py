"""``cloudbranch simulate --live``: the profile's customers and desks driven
against a running server through its public API, for load tests.

Customers are the seeded demo customers (at most one open call each, as the
service allows) and desks are the roster's specialists that exist on the server,
logged in with the demo password; so the server must run in development mode.
Time runs ``speed`` times faster than the profile's clock. Everything is bounded:
loopback addresses only, at most ``max_calls`` calls and ``max_seconds`` of wall
time, after which open calls are hung up and every socket closed.

Not driven live: priorities (every call is normal) and callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from server.routing.model import LadderStep

from .engine import CallRecord, DeskRecord, planned_calls
from .profile import Profile, Specialist

LOOPBACK_NAMES = {"localhost"}
MAX_CALLS = 500
MAX_SECONDS = 600.0
DEMO_PASSWORD = "branch-demo"
DEMO_CUSTOMERS = [f"C{n}" for n in range(1001, 1021)]
REQUEST_TIMEOUT_S = 10.0
LiveProgress = Callable[[float, str], None]


class LiveRefused(Exception):
    """The live run cannot start: the message says why."""


@dataclass(frozen=True)
class LiveLimits:
    speed: float = 60.0
    max_calls: int = 40
    max_seconds: float = 120.0

    def __post_init__(self) -> None:
        if not 1 <= self.speed <= 3600:
            raise ValueError("--speed must be between 1 and 3600")
        if not 1 <= self.max_calls <= MAX_CALLS:
            raise ValueError(f"--max-calls must be between 1 and {MAX_CALLS}")
        if not 1 <= self.max_seconds <= MAX_SECONDS:
            raise ValueError(f"--max-seconds must be between 1 and {MAX_SECONDS:.0f}")


@dataclass
class LiveResult:
    calls: list[CallRecord]
    desks: list[DeskRecord]
    skipped: int = 0  # arrivals with no free demo customer to place them
    errors: list[str] = field(default_factory=list)


def require_loopback(base_url: str) -> str:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        raise LiveRefused(f"not an http(s) URL: {base_url!r}")
    try:
        loopback = host in LOOPBACK_NAMES or ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise LiveRefused(f"--live drives only a server on loopback, not {host!r}")
    return base_url.rstrip("/")


@dataclass
class _Run:
    base: str
    http: aiohttp.ClientSession
    profile: Profile
    limits: LiveLimits
    started: float = field(default_factory=time.monotonic)
    rng: random.Random = field(default_factory=random.Random)
    # Every task of the run (bounded by max_calls plus the desks), kept to the end
    # so each one's outcome is collected.
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    records: dict[str, CallRecord] = field(default_factory=dict)

    def sim_now(self) -> float:
        """The profile's clock: its start plus wall time elapsed, sped up."""
        return self.profile.start_s + (time.monotonic() - self.started) * self.limits.speed

    def wall(self, sim_seconds: float) -> float:
        return sim_seconds / self.limits.speed

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text else None)

    async def socket(self, token: str) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.base + "/api/v1/ws", heartbeat=20)
        await ws.send_json({"type": "hello", "token": token})
        welcome = await ws.receive_json(timeout=REQUEST_TIMEOUT_S)
        if welcome.get("type") != "welcome":
            await ws.close()
            raise LiveRefused(f"the server refused a socket: {welcome}")
        return ws


async def drive(
    base_url: str, profile: Profile, limits: LiveLimits, progress: LiveProgress | None = None
) -> LiveResult:
    base = require_loopback(base_url)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        run = _Run(base, http, profile, limits, rng=random.Random(profile.seed))
        desks = await _log_in_desks(run)
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        try:
            result = await _drive(run, desks, sockets, progress)
        finally:
            for task in run.tasks:
                task.cancel()
            outcomes = await asyncio.gather(*run.tasks, return_exceptions=True)
            for ws in sockets:
                await ws.close()
        result.errors = [
            f"{type(o).__name__}: {o} (at {_where(o)})"
            for o in outcomes
            if isinstance(o, Exception) and not isinstance(o, asyncio.CancelledError)
        ]
        return result


async def _log_in_desks(run: _Run) -> list[tuple[DeskRecord, str]]:
    status, body = await run.call(
        "POST", "/api/v1/dev/tokens", body={"role": "supervisor", "subject": "SIM"}
    )
    if status != 201:
        raise LiveRefused("the server is not in development mode (no demo tokens)")
    status, listed = await run.call("GET", "/api/v1/specialists", body["token"])
    if status != 200:
        raise LiveRefused(f"cannot list the server's specialists ({status})")
    known = {s["specialist_id"]: s for s in listed}
    desks = []
    for entry in run.profile.roster:
        spec = known.get(entry.id)
        if spec is None:
            continue
        status, login = await run.call(
            "POST",
            "/api/v1/desk/login",
            body={"username": spec["username"], "password": DEMO_PASSWORD},
        )
        if status != 200:
            raise LiveRefused(f"desk login of {entry.id} failed ({status})")
        dialects = _dialects(spec["dialects"]) or dict(entry.dialects)
        desks.append((DeskRecord(Specialist(id=entry.id, dialects=dialects)), login["token"]))
    if not desks:
        raise LiveRefused("no roster id matches a specialist on the server (S01, S02, ...)")
    return desks


def _dialects(listed: Any) -> dict[str, int]:
    if isinstance(listed, dict):
        return {str(k): int(v) for k, v in listed.items()}
    if isinstance(listed, list):
        return {str(d["dialect"]): int(d["proficiency"]) for d in listed if isinstance(d, dict)}
    return {}


async def _drive(
    run: _Run,
    desks: list[tuple[DeskRecord, str]],
    sockets: list[aiohttp.ClientWebSocketResponse],
    progress: LiveProgress | None,
) -> LiveResult:
    for desk, token in desks:
        ws = await run.socket(token)
        sockets.append(ws)
        status, _ = await run.call("PUT", "/api/v1/desk/presence", token, {"state": "available"})
        if status != 200:
            raise LiveRefused(f"presence of {desk.specialist.id} refused ({status})")
        desk.on_shift, desk.logged_in_at = True, run.sim_now()
        _own(run, _desk_loop(run, desk, token, ws))
    horizon = run.profile.start_s + run.limits.max_seconds * run.limits.speed
    plan = [c for c in planned_calls(run.profile, run.rng) if c.arrived_at < horizon]
    plan = plan[: run.limits.max_calls]
    result = LiveResult([], [d for d, _ in desks])
    customers: asyncio.Queue[str] = asyncio.Queue()
    for customer in DEMO_CUSTOMERS:
        customers.put_nowait(customer)
    deadline = run.started + run.limits.max_seconds
    customer_tasks = []
    for index, record in enumerate(plan):
        delay = run.wall(record.arrived_at - run.profile.start_s) - (time.monotonic() - run.started)
        if time.monotonic() + max(0.0, delay) >= deadline:
            break
        await asyncio.sleep(max(0.0, delay))
        if progress is not None:
            progress(index / max(1, len(plan)), f"{index} of {len(plan)} calls placed")
        if customers.empty():
            result.skipped += 1
            continue
        customer = customers.get_nowait()
        result.calls.append(record)
        customer_tasks.append(_own(run, _customer(run, record, customer, customers)))
    remaining = deadline - time.monotonic()
    if customer_tasks and remaining > 0:
        await asyncio.wait(customer_tasks, timeout=remaining)
    now = run.sim_now()
    for desk, _ in desks:
        if desk.logged_in_at is not None:
            desk.logged_in_s += now - desk.logged_in_at
            desk.logged_in_at = None
    if progress is not None:
        progress(1.0, f"{len(result.calls)} calls placed, {result.skipped} skipped")
    return result


def _own(run: _Run, coroutine: Any) -> asyncio.Task[None]:
    task: asyncio.Task[None] = asyncio.create_task(coroutine)
    run.tasks.append(task)
    return task


async def _customer(run: _Run, record: CallRecord, customer: str, pool: asyncio.Queue[str]) -> None:
    status, body = await run.call(
        "POST", "/api/v1/dev/tokens", body={"role": "customer", "subject": customer}
    )
    token = body["token"]
    ws = await run.socket(token)
    call_id: str | None = None
    try:
        record.arrived_at = run.sim_now()
        status, body = await run.call("POST", "/api/v1/calls", token, {"dialect": record.dialect})
        if status not in (200, 201):
            return
        call_id = body["call_id"]
        run.records[call_id] = record
        patience = None if record.patience_s is None else run.wall(record.patience_s)
        try:
            async with asyncio.timeout(patience):
                await _until(ws, "call.assigned", call_id)
        except TimeoutError:
            record.abandoned_at = run.sim_now()
            await run.call("DELETE", f"/api/v1/calls/{call_id}", token)
            call_id = None
            return
        record.answered_at = run.sim_now()
        await _until(ws, "call.ended", call_id)
        call_id = None
    finally:
        if call_id is not None:  # cut short by the deadline: hang up
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await run.call("DELETE", f"/api/v1/calls/{call_id}", token)
        await ws.close()
        pool.put_nowait(customer)


async def _until(ws: aiohttp.ClientWebSocketResponse, kind: str, call_id: str) -> dict[str, Any]:
    async for message in ws:
        if message.type is not aiohttp.WSMsgType.TEXT:
            break
        data: dict[str, Any] = json.loads(message.data)
        if data.get("type") == kind and data.get("call_id") == call_id:
            return data
    raise ConnectionError(f"socket closed before {kind}")


async def _desk_loop(
    run: _Run, desk: DeskRecord, token: str, ws: aiohttp.ClientWebSocketResponse
) -> None:
    """The desk socket's one reader. It never stops reading (so heartbeats are
    answered); each offer is worked by a task of its own, and the server makes
    no new offer to this specialist until that call's wrap-up is done."""
    async for message in ws:
        if message.type is not aiohttp.WSMsgType.TEXT:
            return
        data = json.loads(message.data)
        if data.get("type") == "call.offered":
            _own(run, _work_offer(run, desk, token, data))


async def _work_offer(run: _Run, desk: DeskRecord, token: str, offer: dict[str, Any]) -> None:
    """Accept (or miss) an offer, talk, wrap up, as a specialist does."""
    if run.rng.random() < run.profile.desk.miss_probability:
        desk.misses += 1
        return
    await asyncio.sleep(run.wall(run.profile.desk.accept_delay.sample(run.rng)))
    call_id = offer["call_id"]
    status, _ = await run.call(
        "POST", f"/api/v1/calls/{call_id}/accept", token, {"offer_id": offer["offer_id"]}
    )
    if status != 200:
        return  # withdrawn meanwhile (the customer hung up, or the lease ran out)
    record = run.records.get(call_id)
    dialect = record.dialect if record else next(iter(run.profile.arrivals))
    handle = run.profile.handle_time_for(dialect).sample(run.rng)
    if record is not None:
        record.specialist_id, record.handle_s = desk.specialist.id, handle
        speaks = desk.specialist.dialects.get(dialect, 0) >= _threshold(run.profile)
        record.step = LadderStep.DIALECT if speaks else LadderStep.ANY
    wrap_up = run.profile.wrap_up.sample(run.rng)
    desk.handled += 1
    desk.talk_s += handle
    desk.wrap_up_s += wrap_up
    await asyncio.sleep(run.wall(handle))
    await run.call("POST", f"/api/v1/calls/{call_id}/end", token)
    await asyncio.sleep(run.wall(wrap_up))
    await run.call("POST", f"/api/v1/calls/{call_id}/wrap-up", token, {"code": "simulated"})


def _threshold(profile: Profile) -> int:
    return profile.routing_policy().proficiency_threshold


def _where(error: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "simulate" in f.filename] or frames
    return f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
