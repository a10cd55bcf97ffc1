"""``--live`` against a real server on loopback: seeded desks and customers go
through the public API, and the same report comes out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.simulate.live import LiveLimits, drive
from server.simulate.report import build_report
from tests.api.harness import Api, RunningServer, prepare_template, running_server
from tests.simulate.helpers import profile

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    await prepare_template(database_url)
    async with running_server(database_url=database_url) as handle:
        yield handle


async def test_live_drive_through_a_running_server(server: RunningServer) -> None:
    day = profile(
        arrival_process="even",
        arrivals={"cmn": [4], "wuu": [2]},
        handle_time={"default": {"distribution": "fixed", "mean_s": 120}},
        wrap_up={"distribution": "fixed", "mean_s": 30},
        desk={"accept_delay": {"distribution": "fixed", "mean_s": 5}},
        # S01 and S06 are seeded; X99 is not on the server and is left out.
        roster=[
            {"id": "S01", "dialects": {"cmn": 5, "wuu": 5}},
            {"id": "S06", "dialects": {"cmn": 5}},
            {"id": "X99", "dialects": {"cmn": 5}},
        ],
    )
    # 600x: the half hour of arrivals takes 3 s, a call 0.2 s.
    limits = LiveLimits(speed=600, max_calls=6, max_seconds=30)
    result = await drive(server.base_url, day, limits)
    assert result.errors == [] and result.skipped == 0
    assert len(result.calls) == 6
    assert all(c.answered_at is not None for c in result.calls), result.calls
    assert {d.specialist.id for d in result.desks} == {"S01", "S06"}
    assert sum(d.handled for d in result.desks) == 6
    report = build_report(day, result.calls, result.desks, mode="live")
    assert report.mode == "live"
    assert report.totals("cmn").answered == 4 and report.totals("wuu").answered == 2
    assert all(s.occupancy > 0 for s in report.specialists)
    # The server saw the same day: six calls answered, nobody left waiting.
    stats = await _stats(server)
    assert stats["answered_today"] == 6, stats
    assert not any(q["waiting"] for q in stats["queue"].values()), stats


async def _stats(server: RunningServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        supervisor = await Api(server.base_url, session).supervisor()
        reply = await supervisor.get("/api/v1/stats")
        assert reply.status == 200, reply
        body: dict[str, Any] = reply.body
        return body
