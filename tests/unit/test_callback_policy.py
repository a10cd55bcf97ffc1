"""Callback rules: allowed hours, local days, the daily cap, consent, whose turn it is."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from server.callbacks.policy import (
    CallbackPolicy,
    LocalHours,
    PendingCallback,
    Unavailable,
    Verdict,
    callbacks_due,
    decide,
    give_up_at,
    local_day,
    next_day_opening,
    next_opening,
    rank_key,
    retry_at,
    rings_on_local_day,
    waiting_rank_keys,
    why_not_offered,
    within_hours,
    working_specialists,
)
from server.routing.model import (
    LadderStep,
    PriorityClass,
    QueuedCall,
    QueueSnapshot,
    RoutingPolicy,
    SpecialistState,
    SpecialistView,
    WaitingCallView,
)
from server.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
DAY_HOURS = LocalHours.parse("08:00-20:00")


def at(
    zone: ZoneInfo, year: int, month: int, day: int, h: int = 0, m: int = 0, s: int = 0, us: int = 0
) -> float:
    """The instant a wall clock in ``zone`` shows that date and time."""
    return datetime(year, month, day, h, m, s, us, tzinfo=zone).timestamp()


def utc(year: int, month: int, day: int, h: int = 0, m: int = 0) -> float:
    return at(ZoneInfo("UTC"), year, month, day, h, m)


def policy(**overrides: object) -> CallbackPolicy:
    values: dict[str, object] = {
        "threshold_s": 300.0,
        "hours": DAY_HOURS,
        "zone": SHANGHAI,
        "max_attempts_per_day": 2,
        "ring_s": 30.0,
        "retry_after_s": 600.0,
        "max_days": 3,
    }
    values.update(overrides)
    return CallbackPolicy(**values)  # type: ignore[arg-type]


# -- hours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("08:00-20:00", 8 * 3600, 20 * 3600),
        ("00:00-24:00", 0, 24 * 3600),
        ("20:00-08:00", 20 * 3600, 8 * 3600),
        (" 09:30-17:45 ", 9 * 3600 + 30 * 60, 17 * 3600 + 45 * 60),
    ],
)
def test_hours_parse(text: str, start: int, end: int) -> None:
    hours = LocalHours.parse(text)
    assert (hours.start_s, hours.end_s) == (start, end)


@pytest.mark.parametrize(
    "text",
    ["8:00-20:00", "08:00", "08:00-20:60", "25:00-26:00", "24:00-08:00", "08:00-24:30",
     "08:00-08:00", "", "08:00–20:00", "00:00-00:00"],
)  # fmt: skip
def test_bad_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        LocalHours.parse(text)


@pytest.mark.parametrize(
    ("wall", "allowed"),
    [
        ((7, 59, 59, 999_999), False),
        ((7, 59, 59, 0), False),
        ((8, 0, 0, 0), True),
        ((12, 0, 0, 0), True),
        ((19, 59, 0, 0), True),
        ((19, 59, 59, 999_999), True),
        ((20, 0, 0, 0), False),
        ((23, 59, 59, 0), False),
        ((0, 0, 0, 0), False),
    ],
)
def test_hours_boundaries_in_shanghai(wall: tuple[int, int, int, int], allowed: bool) -> None:
    assert within_hours(at(SHANGHAI, 2024, 5, 1, *wall), DAY_HOURS, SHANGHAI) is allowed


def test_hours_are_local_to_the_configured_zone_not_to_utc() -> None:
    instant = utc(2024, 5, 1, 1, 0)  # 09:00 in Shanghai, 03:00 in Berlin, 21:00 in New York
    assert within_hours(instant, DAY_HOURS, SHANGHAI)
    assert not within_hours(instant, DAY_HOURS, BERLIN)
    assert not within_hours(instant, DAY_HOURS, NEW_YORK)


def test_a_window_may_wrap_past_midnight() -> None:
    night = LocalHours.parse("20:00-08:00")
    assert within_hours(at(SHANGHAI, 2024, 5, 1, 20, 0), night, SHANGHAI)
    assert within_hours(at(SHANGHAI, 2024, 5, 1, 23, 59), night, SHANGHAI)
    assert within_hours(at(SHANGHAI, 2024, 5, 2, 7, 59, 59), night, SHANGHAI)
    assert not within_hours(at(SHANGHAI, 2024, 5, 2, 8, 0), night, SHANGHAI)
    assert not within_hours(at(SHANGHAI, 2024, 5, 1, 19, 59, 59), night, SHANGHAI)


def test_all_day() -> None:
    always = LocalHours.parse("00:00-24:00")
    for hour in range(24):
        assert within_hours(at(SHANGHAI, 2024, 5, 1, hour, 30), always, SHANGHAI)


# -- next opening ---------------------------------------------------------------------------


def test_next_opening_is_now_inside_the_window() -> None:
    now = at(SHANGHAI, 2024, 5, 1, 8, 0)
    assert next_opening(now, DAY_HOURS, SHANGHAI) == now


def test_next_opening_before_and_after_the_window() -> None:
    early = at(SHANGHAI, 2024, 5, 1, 7, 59, 59)
    assert next_opening(early, DAY_HOURS, SHANGHAI) == at(SHANGHAI, 2024, 5, 1, 8, 0)
    late = at(SHANGHAI, 2024, 5, 1, 20, 0)
    assert next_opening(late, DAY_HOURS, SHANGHAI) == at(SHANGHAI, 2024, 5, 2, 8, 0)
    # Month and year ends are ordinary days.
    eve = at(SHANGHAI, 2024, 12, 31, 21, 0)
    assert next_opening(eve, DAY_HOURS, SHANGHAI) == at(SHANGHAI, 2025, 1, 1, 8, 0)


def test_next_opening_of_a_wrapping_window() -> None:
    night = LocalHours.parse("20:00-08:00")
    noon = at(SHANGHAI, 2024, 5, 1, 12, 0)
    assert next_opening(noon, night, SHANGHAI) == at(SHANGHAI, 2024, 5, 1, 20, 0)


def test_next_opening_across_daylight_saving_changes() -> None:
    # New York springs forward on 2024-03-10: the next 08:00 is EDT (UTC-4), not EST.
    saturday_night = at(NEW_YORK, 2024, 3, 9, 21, 0)
    assert next_opening(saturday_night, DAY_HOURS, NEW_YORK) == utc(2024, 3, 10, 12, 0)
    # Berlin falls back on 2024-10-27: the next 08:00 is CET (UTC+1), not CEST.
    saturday_night = at(BERLIN, 2024, 10, 26, 22, 0)
    assert next_opening(saturday_night, DAY_HOURS, BERLIN) == utc(2024, 10, 27, 7, 0)
    # The 25-hour day still closes at 20:00 local time.
    assert within_hours(utc(2024, 10, 27, 18, 59), DAY_HOURS, BERLIN)
    assert not within_hours(utc(2024, 10, 27, 19, 0), DAY_HOURS, BERLIN)


def test_a_start_inside_a_daylight_saving_gap_still_opens_later_and_open() -> None:
    # 02:30 does not exist in New York on 2024-03-10.
    hours = LocalHours.parse("02:30-05:00")
    now = at(NEW_YORK, 2024, 3, 10, 1, 0)
    opening = next_opening(now, hours, NEW_YORK)
    assert opening > now
    assert within_hours(opening, hours, NEW_YORK)
    assert opening < at(NEW_YORK, 2024, 3, 10, 5, 0)


def test_next_day_opening() -> None:
    morning = at(SHANGHAI, 2024, 5, 1, 9, 0)
    assert next_day_opening(morning, DAY_HOURS, SHANGHAI) == at(SHANGHAI, 2024, 5, 2, 8, 0)
    just_before_midnight = at(SHANGHAI, 2024, 5, 1, 23, 59, 59)
    assert next_day_opening(just_before_midnight, DAY_HOURS, SHANGHAI) == at(
        SHANGHAI, 2024, 5, 2, 8, 0
    )


# -- local days and the daily cap ----------------------------------------------------------------


def test_local_day_is_the_zone_s_day() -> None:
    instant = utc(2024, 5, 1, 16, 30)  # 00:30 on 2 May in Shanghai
    assert local_day(instant, SHANGHAI).isoformat() == "2024-05-02"
    assert local_day(instant, BERLIN).isoformat() == "2024-05-01"


def test_rings_are_counted_per_local_day_across_midnight() -> None:
    # 23:50 and 00:10 Shanghai are the same UTC day but two local days.
    late = at(SHANGHAI, 2024, 5, 1, 23, 50)
    after_midnight = at(SHANGHAI, 2024, 5, 2, 0, 10)
    assert local_day(late, ZoneInfo("UTC")) == local_day(after_midnight, ZoneInfo("UTC"))
    now = at(SHANGHAI, 2024, 5, 2, 9, 0)
    assert rings_on_local_day([late, after_midnight], now, SHANGHAI) == 1
    assert rings_on_local_day([late], at(SHANGHAI, 2024, 5, 1, 23, 59), SHANGHAI) == 1
    assert rings_on_local_day([], now, SHANGHAI) == 0


def test_give_up_at_is_local_midnight_after_the_last_day() -> None:
    requested = at(SHANGHAI, 2024, 5, 1, 19, 59)
    assert give_up_at(requested, SHANGHAI, 3) == at(SHANGHAI, 2024, 5, 4, 0, 0)
    assert give_up_at(requested, SHANGHAI, 1) == at(SHANGHAI, 2024, 5, 2, 0, 0)


# -- decide ------------------------------------------------------------------------------------


def test_consent_and_do_not_call_come_first_and_end_the_callback() -> None:
    now = at(SHANGHAI, 2024, 5, 1, 10, 0)
    common = {"rings_today": 0, "requested_at": now}
    no_consent = decide(policy(), now, consent=False, do_not_call=True, **common)  # type: ignore[arg-type]
    assert no_consent.verdict is Verdict.NO_CONSENT and no_consent.next_attempt_at is None
    dnc = decide(policy(), now, consent=True, do_not_call=True, **common)  # type: ignore[arg-type]
    assert dnc.verdict is Verdict.DO_NOT_CALL
    # Even at night: we never postpone a call to someone who said no.
    night = at(SHANGHAI, 2024, 5, 1, 23, 0)
    assert (
        decide(policy(), night, consent=True, do_not_call=True, rings_today=0, requested_at=now)
    ).verdict is Verdict.DO_NOT_CALL


def test_outside_hours_waits_for_the_next_opening() -> None:
    requested = at(SHANGHAI, 2024, 5, 1, 19, 0)
    now = at(SHANGHAI, 2024, 5, 1, 20, 0)
    decision = decide(
        policy(), now, consent=True, do_not_call=False, rings_today=0, requested_at=requested
    )
    assert decision.verdict is Verdict.OUTSIDE_HOURS
    assert decision.next_attempt_at == at(SHANGHAI, 2024, 5, 2, 8, 0)
    assert not decision.gives_up


def test_the_daily_cap_waits_for_the_next_local_day() -> None:
    requested = at(SHANGHAI, 2024, 5, 1, 9, 0)
    now = at(SHANGHAI, 2024, 5, 1, 10, 0)
    ok = decide(
        policy(), now, consent=True, do_not_call=False, rings_today=1, requested_at=requested
    )
    assert ok.verdict is Verdict.RING
    capped = decide(
        policy(), now, consent=True, do_not_call=False, rings_today=2, requested_at=requested
    )
    assert capped.verdict is Verdict.DAILY_LIMIT
    assert capped.next_attempt_at == at(SHANGHAI, 2024, 5, 2, 8, 0)
    three = policy(max_attempts_per_day=3)
    again = decide(
        three, now, consent=True, do_not_call=False, rings_today=2, requested_at=requested
    )
    assert again.verdict is Verdict.RING


def test_it_gives_up_after_the_last_allowed_day() -> None:
    requested = at(SHANGHAI, 2024, 5, 1, 9, 0)
    last_evening = at(SHANGHAI, 2024, 5, 3, 20, 0)
    decision = decide(
        policy(), last_evening, consent=True, do_not_call=False, rings_today=0,
        requested_at=requested,
    )  # fmt: skip
    assert decision.verdict is Verdict.OUTSIDE_HOURS and decision.gives_up
    capped = decide(
        policy(), at(SHANGHAI, 2024, 5, 3, 15, 0), consent=True, do_not_call=False,
        rings_today=2, requested_at=requested,
    )  # fmt: skip
    assert capped.verdict is Verdict.DAILY_LIMIT and capped.gives_up
    later = decide(
        policy(), at(SHANGHAI, 2024, 5, 4, 9, 0), consent=True, do_not_call=False,
        rings_today=0, requested_at=requested,
    )  # fmt: skip
    assert later.verdict is Verdict.GIVE_UP


def test_retry_after_a_ring() -> None:
    requested = at(SHANGHAI, 2024, 5, 1, 9, 0)
    now = at(SHANGHAI, 2024, 5, 1, 10, 0)
    assert retry_at(policy(), now, requested) == now + 600
    last_minutes = at(SHANGHAI, 2024, 5, 3, 23, 55)
    assert retry_at(policy(), last_minutes, requested) is None


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        policy(max_attempts_per_day=0)
    with pytest.raises(ValueError):
        policy(ring_s=0)
    with pytest.raises(ValueError):
        policy(max_days=0)
    with pytest.raises(ValueError, match="time zone"):
        CallbackPolicy.build(
            threshold_s=0, hours="08:00-20:00", timezone="Mars/Olympus", max_attempts_per_day=2,
            ring_s=30, retry_after_s=600, max_days=3,
        )  # fmt: skip


def test_settings_refuse_bad_hours_and_zones() -> None:
    with pytest.raises(ValidationError, match="callback hours"):
        Settings(dev_mode=True, callback_hours="8-20")
    with pytest.raises(ValidationError, match="time zone"):
        Settings(dev_mode=True, callback_timezone="Nowhere/Atlantis")
    with pytest.raises(ValidationError):
        Settings(dev_mode=True, callback_max_attempts_per_day=0)
    settings = Settings(dev_mode=True)
    assert (settings.callback_hours, settings.callback_timezone) == ("08:00-20:00", "Asia/Shanghai")
    assert settings.callback_threshold_s == 300 and settings.callback_max_attempts_per_day == 2


# -- the option while waiting --------------------------------------------------------------------


def offered(**overrides: object) -> Unavailable | None:
    values: dict[str, object] = {
        "queued": True,
        "callback_allowed": True,
        "consent": True,
        "do_not_call": False,
        "estimated_wait_s": 600,
        "threshold_s": 300.0,
    }
    values.update(overrides)
    return why_not_offered(**values)  # type: ignore[arg-type]


def test_the_option_is_offered_only_when_everything_allows_it() -> None:
    assert offered() is None
    assert offered(queued=False) is Unavailable.NOT_WAITING
    assert offered(callback_allowed=False) is Unavailable.NOT_ALLOWED
    assert offered(consent=False) is Unavailable.NO_CONSENT
    assert offered(do_not_call=True) is Unavailable.DO_NOT_CALL
    assert offered(estimated_wait_s=299) is Unavailable.SHORT_WAIT
    assert offered(estimated_wait_s=300) is None
    assert offered(estimated_wait_s=None) is None  # unknown counts as long
    assert offered(estimated_wait_s=0, threshold_s=0) is None


# -- whose turn it is ------------------------------------------------------------------------

ROUTING = RoutingPolicy()


def pending(
    callback_id: str, enqueued_at: float, priority: str = "normal", **kw: bool
) -> PendingCallback:
    return PendingCallback(callback_id, rank_key(enqueued_at, priority, ROUTING), **kw)


def test_rank_key_follows_the_queue_s_priority_weights() -> None:
    assert rank_key(1000.0, "normal", ROUTING) == 1000.0
    assert rank_key(1000.0, "redirect", ROUTING) == 1000.0 - ROUTING.weight_redirect_s
    assert rank_key(1000.0, "urgent", ROUTING) == 1000.0 - ROUTING.weight_urgent_s


def test_nobody_at_work_means_no_turn() -> None:
    assert callbacks_due([pending("a", 100.0)], [], working=0) == []


def test_a_callback_s_turn_comes_when_fewer_are_ahead_than_specialists_at_work() -> None:
    callback = pending("a", 100.0)
    assert callbacks_due([callback], [], working=1) == ["a"]
    # One call ranked ahead, one specialist: not yet; two specialists: yes.
    assert callbacks_due([callback], [50.0], working=1) == []
    assert callbacks_due([callback], [50.0], working=2) == ["a"]
    # Calls that came later do not count: the callback keeps its place.
    assert callbacks_due([callback], [150.0, 200.0, 300.0], working=1) == ["a"]


def test_callbacks_ahead_hold_their_place_too() -> None:
    first, second = pending("first", 100.0), pending("second", 110.0)
    assert callbacks_due([second, first], [], working=1) == ["first"]
    assert callbacks_due([second, first], [], working=2) == ["first", "second"]
    ringing = pending("first", 100.0, ringing=True)
    assert callbacks_due([second, ringing], [], working=1) == []
    assert callbacks_due([second, ringing], [], working=2) == ["second"]


def test_priority_counts_in_the_turn() -> None:
    normal = pending("normal", 100.0)
    urgent = pending("urgent", 500.0, "urgent")  # 600 s of weight: ranked ahead
    assert callbacks_due([normal, urgent], [], working=1) == ["urgent"]
    assert callbacks_due([normal], [rank_key(500.0, "urgent", ROUTING)], working=1) == []


def snapshot() -> QueueSnapshot:
    def waiting(
        call_id: str, at_s: float, priority: PriorityClass, position: int
    ) -> WaitingCallView:
        call = QueuedCall(call_id, "C1", None, priority, at_s)
        return WaitingCallView(call, position, LadderStep.ANY, offered=False)

    def specialist(sid: str, state: SpecialistState) -> SpecialistView:
        return SpecialistView(sid, state, frozenset({"cmn"}), None, 0)

    return QueueSnapshot(
        taken_at=1000.0,
        waiting=(
            waiting("u", 900.0, PriorityClass.URGENT, 1),
            waiting("n", 200.0, PriorityClass.NORMAL, 2),
        ),
        specialists=tuple(
            specialist(f"S{i}", state)
            for i, state in enumerate(
                [
                    SpecialistState.AVAILABLE,
                    SpecialistState.BUSY,
                    SpecialistState.WRAP_UP,
                    SpecialistState.RESERVED,
                    SpecialistState.AWAY,
                    SpecialistState.OFFLINE,
                ]
            )
        ),
    )


def test_snapshot_helpers() -> None:
    taken = snapshot()
    assert working_specialists(taken) == 4  # away and offline do not count
    assert waiting_rank_keys(taken, ROUTING) == [200.0, 900.0 - ROUTING.weight_urgent_s]
    assert waiting_rank_keys(taken, ROUTING) == sorted(waiting_rank_keys(taken, ROUTING))
