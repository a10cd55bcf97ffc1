"""The simulator's world around the real routing backend: ladders, misses,
abandonment, callbacks, priorities, wrap-up and shifts, on small days whose
outcome can be worked out by hand."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from server.routing.memory import MemoryQueueBackend
from server.routing.model import LadderStep, PriorityClass
from server.simulate.engine import Simulation, simulate
from server.simulate.report import build_report
from tests.simulate.helpers import profile

EVEN = {"arrival_process": "even"}


def test_routing_is_the_servers_own_backend_and_policy() -> None:
    day = profile(routing={"dialect_wait_s": 12, "offer_lease_s": 9, "max_consecutive_misses": 2})
    simulation = Simulation(day)
    assert type(simulation.backend) is MemoryQueueBackend
    assert simulation.backend.policy.dialect_wait_s == 12
    assert simulation.backend.policy.offer_lease_s == 9
    assert simulation.backend.policy.max_consecutive_misses == 2


async def test_a_speaker_first_then_anyone_after_the_dialect_wait() -> None:
    day = profile(
        **EVEN,
        arrivals={"wuu": [2]},  # at 08:07:30 and 08:22:30
        handle_time={"default": {"distribution": "fixed", "mean_s": 2000}},
        roster=[
            {"id": "WUU", "dialects": {"cmn": 4, "wuu": 5}},
            {"id": "CMN", "dialects": {"cmn": 5}},
        ],
    )
    first, second = sorted((await simulate(day)).calls, key=lambda c: c.arrived_at)
    assert (first.specialist_id, first.step, first.wait_s) == ("WUU", LadderStep.DIALECT, 0)
    # The speaker is busy: the call waits out the dialect step (30 s), then anyone.
    assert (second.specialist_id, second.step) == ("CMN", LadderStep.ANY)
    assert second.wait_s == pytest.approx(30.0)


async def test_with_no_speaker_logged_in_the_dialect_step_is_skipped() -> None:
    day = profile(**EVEN, arrivals={"yue": [1]}, roster=[{"id": "CMN", "dialects": {"cmn": 5}}])
    [call] = (await simulate(day)).calls
    assert (call.specialist_id, call.step, call.wait_s) == ("CMN", LadderStep.ANY, 0)


async def test_missed_offers_put_a_specialist_away() -> None:
    day = profile(
        **EVEN,
        arrivals={"cmn": [1]},
        desk={"miss_probability": 0.999, "away_return_s": 100_000},
        roster=[{"id": "S1", "dialects": {"cmn": 5}}],
    )
    result = await simulate(day)
    [desk] = result.desks
    assert desk.misses == 3  # max_consecutive_misses, then away for the rest of the day
    [call] = result.calls
    assert call.answered_at is None and call.abandoned_at is None
    assert build_report(day, result.calls, result.desks).totals("cmn").unanswered == 1


async def test_customers_hang_up_unless_they_took_a_callback() -> None:
    nobody_yet = [{"id": "S1", "dialects": {"cmn": 5}, "shift": "09:00-20:00"}]
    patience = {"distribution": "fixed", "mean_s": 60}
    hang_up = profile(**EVEN, arrivals={"cmn": [5]}, patience=patience, roster=nobody_yet)
    calls = (await simulate(hang_up)).calls
    assert all(c.abandoned_at == pytest.approx(c.arrived_at + 60) for c in calls)

    callbacks = {"threshold_s": 0, "accept_probability": 1.0}
    call_me = hang_up.model_copy(update={"callbacks": type(hang_up.callbacks)(**callbacks)})
    result = await simulate(call_me)
    assert all(c.callback and c.abandoned_at is None for c in result.calls)
    assert all(c.answered_at is not None and c.answered_at >= 9 * 3600 for c in result.calls)
    assert build_report(call_me, result.calls, result.desks).totals("cmn").callbacks == 5


async def test_urgent_calls_overtake_normal_ones() -> None:
    day = profile(
        arrivals={"cmn": [24, 24]},  # more than one specialist can take
        priorities={"normal": 0.5, "urgent": 0.5},
        roster=[{"id": "S1", "dialects": {"cmn": 5}}],
    )
    answered = [c for c in (await simulate(day)).calls if c.answered_at is not None]

    def mean_wait(priority: PriorityClass) -> float:
        waits = [c.wait_s or 0.0 for c in answered if c.priority is priority]
        return sum(waits) / len(waits)

    assert mean_wait(PriorityClass.URGENT) < mean_wait(PriorityClass.NORMAL) / 2


async def test_wrap_up_keeps_a_specialist_from_the_next_call() -> None:
    day = profile(
        **EVEN,
        arrivals={"cmn": [30]},  # one a minute
        wrap_up={"distribution": "fixed", "mean_s": 50},
        roster=[{"id": "S1", "dialects": {"cmn": 5}}],
    )
    result = await simulate(day)
    starts = sorted(c.answered_at for c in result.calls if c.answered_at is not None)
    assert len(starts) == 30
    assert all(b - a == pytest.approx(150) for a, b in itertools.pairwise(starts))
    [desk] = result.desks
    assert desk.talk_s == 3000 and desk.wrap_up_s == 1500


async def test_a_call_outlives_the_shift_then_the_specialist_logs_out() -> None:
    day = profile(
        **EVEN,
        arrivals={"cmn": [1]},  # at 08:15
        handle_time={"default": {"distribution": "fixed", "mean_s": 1000}},
        roster=[{"id": "S1", "dialects": {"cmn": 5}, "shift": "08:00-08:30"}],
    )
    result = await simulate(day)
    [desk] = result.desks
    assert desk.handled == 1
    assert desk.logged_in_s == pytest.approx(900 + 1000)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"priorities": {"normal": 0.5}}, "add up to 1"),
        ({"routing": {"dialect_wait": 3}}, "unknown routing fields"),
        ({"roster": [{"id": "S1", "dialects": {"cmn": 5}, "shift": "18:00-08:00"}]}, "shift"),
        ({"start": "23:30"}, "past midnight"),
        ({"arrivals": {"cmn": [-1]}}, "negative"),
        ({"handle_time": {"cmn": {"distribution": "lognormal", "mean_s": 9}}}, "sd_s"),
    ],
)
def test_a_bad_profile_is_refused_with_the_reason(
    change: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        profile(**change)
