"""The simulator against queueing theory: one dialect, Poisson arrivals and
exponential handle times is the M/M/N queue, whose mean wait and service level
Erlang C gives exactly.

Stated tolerance: the simulated mean wait within 12% of Erlang C's, the service
level and the probability of waiting within 0.03. Two simulated days of about
19,000 calls each (3 specialists at 60% load, 8 s mean handle time, 4 s target,
so a day holds many calls); the first and last half hour are left out (the queue
starts empty and specialists log out at the end). The seed is fixed, so the run
is deterministic; seeds 1 to 6 all agree within 10%.
"""

from __future__ import annotations

import pytest

from server.simulate import erlang
from server.simulate.engine import simulate
from server.simulate.report import build_report
from tests.simulate.helpers import profile

AGENTS, LOAD, HANDLE_S, TARGET_S = 3, 0.6, 8.0, 4.0
RATE = LOAD * AGENTS / HANDLE_S  # calls per second


async def test_mm_n_agrees_with_erlang_c() -> None:
    day = profile(
        seed=1,
        start="00:00",
        service_level={"target_s": TARGET_S, "goal": 0.8},
        handle_time={"default": {"distribution": "exponential", "mean_s": HANDLE_S}},
        arrivals={"cmn": [RATE * 1800] * 48},
        arrival_process="poisson",
        roster=[
            {"id": f"S{i}", "dialects": {"cmn": 5}, "shift": "00:00-24:00"} for i in range(AGENTS)
        ],
    )
    result = await simulate(day, days=2)
    steady = [c for c in result.calls if 1800 <= c.arrived_at < 24 * 3600 - 1800]
    assert len(steady) > 35_000
    assert all(c.answered_at is not None for c in steady)
    waits = [c.wait_s or 0.0 for c in steady]
    mean_wait = sum(waits) / len(waits)
    within = sum(w <= TARGET_S for w in waits) / len(waits)
    waited = sum(w > 1e-9 for w in waits) / len(waits)

    assert mean_wait == pytest.approx(erlang.mean_wait(AGENTS, RATE, HANDLE_S), rel=0.12)
    assert within == pytest.approx(erlang.service_level(AGENTS, RATE, HANDLE_S, TARGET_S), abs=0.03)
    assert waited == pytest.approx(erlang.erlang_c(AGENTS, RATE * HANDLE_S), abs=0.03)
    handled = [c.handle_s for c in steady]
    assert sum(handled) / len(handled) == pytest.approx(HANDLE_S, rel=0.03)

    # The report (the whole day) tells the same story, and Erlang C staffs it as rostered.
    report = build_report(day, result.calls, result.desks, days=2)
    totals = report.totals("cmn")
    assert totals.service_level == pytest.approx(within, abs=0.02)
    expected_sl = erlang.service_level(AGENTS, RATE, HANDLE_S, TARGET_S)
    for half_hour in report.series("cmn"):
        assert half_hour.rostered == AGENTS
        assert half_hour.erlang_service_level == pytest.approx(expected_sl)
        assert half_hour.needed == erlang.agents_needed(RATE, HANDLE_S, TARGET_S, 0.8)
    occupancy = [s.occupancy for s in report.specialists]
    assert sum(occupancy) / len(occupancy) == pytest.approx(LOAD, abs=0.03)
