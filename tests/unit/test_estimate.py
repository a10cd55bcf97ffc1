"""Wait estimates, checked against figures worked out by hand."""

from __future__ import annotations

import re

import pytest

from server.routing.estimate import WaitEstimate, estimate_waits, wait_message
from server.routing.model import (
    LadderStep,
    PriorityClass,
    QueuedCall,
    QueueSnapshot,
    SpecialistState,
    SpecialistView,
    WaitingCallView,
)

ANY, DIALECT = LadderStep.ANY, LadderStep.DIALECT
AVAILABLE, BUSY, WRAP_UP, RESERVED = (
    SpecialistState.AVAILABLE,
    SpecialistState.BUSY,
    SpecialistState.WRAP_UP,
    SpecialistState.RESERVED,
)
AWAY, OFFLINE = SpecialistState.AWAY, SpecialistState.OFFLINE


def spec(name: str, state: SpecialistState, *dialects: str) -> SpecialistView:
    return SpecialistView(name, state, frozenset(dialects), None, 0)


def snapshot(
    calls: list[tuple[str, str | None, LadderStep]], specialists: list[SpecialistView]
) -> QueueSnapshot:
    waiting = tuple(
        WaitingCallView(
            call=QueuedCall(call_id, "C" + call_id, dialect, PriorityClass.NORMAL, float(i)),
            position=i + 1,
            step=step,
            offered=False,
        )
        for i, (call_id, dialect, step) in enumerate(calls)
    )
    return QueueSnapshot(taken_at=100.0, waiting=waiting, specialists=tuple(specialists))


def seconds(estimates: dict[str, WaitEstimate]) -> dict[str, int | None]:
    return {call_id: e.seconds for call_id, e in estimates.items()}


def test_everyone_busy_calls_wait_in_turn() -> None:
    # Two busy specialists, AHT 300 s: they free up at 2 per 300 s.
    # 1st call needs 1 completion: 150 s; 2nd needs 2: 300 s; 3rd needs 3: 450 s.
    snap = snapshot(
        [("a", None, ANY), ("b", None, ANY), ("c", None, ANY)],
        [spec("S1", BUSY, "cmn"), spec("S2", WRAP_UP, "cmn")],
    )
    assert seconds(estimate_waits(snap, 300.0)) == {"a": 150, "b": 300, "c": 450}


def test_an_idle_specialist_means_no_wait_for_the_first_call() -> None:
    # One idle, one busy, AHT 240 s: the 1st call needs no completion (0 s);
    # the 2nd needs one, at 2 per 240 s: 120 s.
    snap = snapshot(
        [("a", None, ANY), ("b", None, ANY)],
        [spec("S1", AVAILABLE, "cmn"), spec("S2", BUSY, "cmn")],
    )
    assert seconds(estimate_waits(snap, 240.0)) == {"a": 0, "b": 120}


def test_rounding_is_up_to_the_next_second() -> None:
    # Three working, AHT 100 s: one completion takes 100/3 = 33.3 s -> 34 s.
    snap = snapshot([("a", None, ANY)], [spec(f"S{i}", BUSY, "cmn") for i in range(3)])
    assert seconds(estimate_waits(snap, 100.0)) == {"a": 34}


def test_dialect_step_calls_count_only_speakers_and_the_calls_they_serve() -> None:
    # A speaks wuu and cmn, B only cmn; both busy; AHT 600 s.
    # a (wuu, dialect step): nothing ahead, 1 wuu speaker: 1 * 600 / 1 = 600 s.
    # b (any step, position 2): 1 ahead, 2 working: 2 * 600 / 2 = 600 s.
    # c (wuu, dialect step): a (same dialect) and b (any step) ahead: 3 * 600 / 1 = 1800 s.
    snap = snapshot(
        [("a", "wuu", DIALECT), ("b", "cmn", ANY), ("c", "wuu", DIALECT)],
        [spec("A", BUSY, "wuu", "cmn"), spec("B", BUSY, "cmn")],
    )
    estimates = estimate_waits(snap, 600.0)
    assert seconds(estimates) == {"a": 600, "b": 600, "c": 1800}
    assert [estimates[c].position for c in "abc"] == [1, 2, 3]


def test_away_and_offline_specialists_do_not_count_reserved_ones_do() -> None:
    # Working: S1 (reserved) and S4 (busy); S2 away, S3 offline. AHT 200 s.
    # 1st call: 1 completion at 2 per 200 s = 100 s.
    snap = snapshot(
        [("a", None, ANY)],
        [
            spec("S1", RESERVED, "cmn"),
            spec("S2", AWAY, "cmn"),
            spec("S3", OFFLINE, "cmn"),
            spec("S4", BUSY, "cmn"),
        ],
    )
    assert seconds(estimate_waits(snap, 200.0)) == {"a": 100}


def test_no_figure_without_handle_time_data() -> None:
    snap = snapshot([("a", None, ANY), ("b", None, ANY)], [spec("S1", BUSY, "cmn")])
    estimates = estimate_waits(snap, None)
    assert seconds(estimates) == {"a": None, "b": None}
    assert [e.position for e in estimates.values()] == [1, 2]


def test_no_figure_without_anyone_who_could_take_the_call() -> None:
    snap = snapshot(
        [("a", None, ANY), ("b", "yue", DIALECT)],
        [spec("S1", AWAY, "cmn", "yue"), spec("S2", BUSY, "cmn")],
    )
    # a: S2 is working. b waits for a yue speaker and none is working.
    assert seconds(estimate_waits(snap, 300.0)) == {"a": 300, "b": None}
    nobody = snapshot([("a", None, ANY)], [spec("S1", OFFLINE, "cmn")])
    assert seconds(estimate_waits(nobody, 300.0)) == {"a": None}


def test_an_empty_queue_has_no_estimates() -> None:
    assert estimate_waits(snapshot([], [spec("S1", BUSY, "cmn")]), 300.0) == {}


@pytest.mark.parametrize(
    ("wait", "zh", "en"),
    [
        (0, "马上就到您了，请稍候。", "You are next in a moment."),
        (59, "马上就到您了，请稍候。", "You are next in a moment."),
        (60, "大约还要等1分钟。", "About 1 minute."),
        (61, "大约还要等2分钟。", "About 2 minutes."),
        (600, "大约还要等10分钟。", "About 10 minutes."),
        (601, "大约还要等11分钟。", "About 11 minutes."),
    ],
)
def test_wait_messages_in_plain_words(wait: int, zh: str, en: str) -> None:
    assert wait_message(wait) == {"zh": zh, "en": en}
    assert WaitEstimate("c", 1, wait).message() == {"zh": zh, "en": en}


def test_without_a_figure_the_message_promises_no_time() -> None:
    message = wait_message(None)
    assert set(message) == {"zh", "en"}
    assert message["zh"] and message["en"]
    assert not re.search(r"\d", message["zh"] + message["en"])
    assert "minute" not in message["en"]
