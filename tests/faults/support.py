"""What the fault tests share: their own Redis and PostgreSQL servers that a test
may stop and start, and the bookkeeping of a scenario's figures.

The servers come from ``tests/services.py`` (the same code that starts the
session's throwaway servers), one private instance each, so stopping them never
disturbs any other test. A missing ``redis-server`` or PostgreSQL fails the test
with the reason; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.services import Postgres, Redis, ServiceError, free_port

START_TIMEOUT_S = 60.0


class FaultRedis(Redis):
    """A private redis-server (no persistence): a restart brings it back empty."""

    def __init__(self) -> None:
        super().__init__(free_port(set()), START_TIMEOUT_S)

    def restart_empty(self) -> None:
        self.stop()
        self.start()


class FaultPostgres(Postgres):
    """A private PostgreSQL cluster that can be stopped and started again."""

    def __init__(self) -> None:
        super().__init__(free_port(set()), START_TIMEOUT_S)

    def stop_now(self) -> None:
        """Stop the server at once ("fast": every session is cut, in-flight
        transactions roll back). Not "immediate": this cluster runs with
        ``synchronous_commit=off`` for speed, so an immediate stop would also
        lose commits already acknowledged, which a production server does not."""
        result = self._run(
            "pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30",
            timeout=40,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"pg_ctl stop failed:\n{result.stdout}")

    def start_again(self) -> None:
        self.start_server()


@dataclass
class Figures:
    """One scenario's counts, printed at the end so a run reports them."""

    scenario: str
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    ws_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    values: dict[str, Any] = field(default_factory=dict)

    def report(self) -> str:
        parts = [f"{k}={v}" for k, v in self.values.items()]
        parts.append(f"statuses_during_fault={dict(sorted(self.statuses.items()))}")
        if self.ws_errors:
            parts.append(f"ws_errors={dict(self.ws_errors)}")
        line = f"FAULT {self.scenario}: " + " ".join(parts)
        print(line)
        return line


async def probe(
    session: aiohttp.ClientSession,
    urls: list[tuple[str, dict[str, str]]],
    figures: Figures,
    stop: asyncio.Event,
    every_s: float = 0.2,
) -> None:
    """GET each (url, headers) in turn until ``stop``; count the statuses."""
    while not stop.is_set():
        for url, headers in urls:
            try:
                async with session.get(
                    url, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    await response.read()
                    figures.statuses[response.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                figures.statuses[0] += 1  # no answer at all
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


async def eventually(check: Any, timeout: float, what: str, every_s: float = 0.2) -> float:
    """Await ``check()`` until it returns truthy; seconds it took. Fails loudly."""
    started = time.monotonic()
    deadline = started + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return time.monotonic() - started
        await asyncio.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


async def timeline_kinds(supervisor: Any, call_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each call's timeline event kinds, as a supervisor reads them."""
    kinds: dict[str, list[str]] = {}
    for call_id in call_ids:
        timeline = await supervisor.get(f"/api/v1/calls/{call_id}/timeline")
        kinds[call_id] = [e["kind"] for e in timeline.body["events"]]
    return kinds


def double_assigned(kinds: dict[str, list[str]]) -> int:
    """Calls accepted more than once: given to two specialists."""
    return sum(events.count("accepted") > 1 for events in kinds.values())
