"""Callback timing on fakes: a ring nobody answers ends after its ring time, the
next attempt comes after the retry delay, and nothing rings outside the hours.

The clock starts at 08:00 in the branch's zone (2026-01-01 00:00 UTC is 08:00 in
Asia/Shanghai) and only moves when the test says so.
"""

from __future__ import annotations

from server.auth.principal import Principal, Role
from server.bootstrap import callback_policy
from server.callbacks.service import CallbackService
from tests.unit.fakes import Branch, branch

CALLBACK_SETTINGS = {
    "callback_threshold_s": 0.0,
    "callback_hours": "08:00-20:00",
    "callback_timezone": "Asia/Shanghai",
    "callback_ring_s": 30.0,
    "callback_retry_after_s": 600.0,
    "callback_max_attempts_per_day": 3,
}


async def waiting_callback(b: Branch) -> tuple[CallbackService, str]:
    """S06 is busy with C1006's call; C1003 waits and asks to be called back."""
    await b.desk_available("S06")
    busy_call = await b.customer_calls("C1006")
    await b.tick()
    (offer,) = b.notifier.to("S06", "call.offered")
    await b.calls.accept(Principal(Role.SPECIALIST, "S06"), busy_call, offer["offer_id"])
    call_id = await b.customer_calls("C1003", callback_allowed=True)
    await b.tick()
    callbacks = CallbackService(b.calls, callback_policy(b.settings))
    view, created = await callbacks.request(Principal(Role.CUSTOMER, "C1003"), call_id)
    assert created
    return callbacks, view["callback_id"]


def rings(b: Branch) -> list[dict[str, object]]:
    return b.notifier.to("C1003", "callback.ringing")


async def test_an_unanswered_ring_ends_after_its_ring_time_and_rings_again_after_the_delay(
    unit_database: str,
) -> None:
    async with branch(unit_database, **CALLBACK_SETTINGS) as b:
        callbacks, callback_id = await waiting_callback(b)
        await callbacks.sweep(b.clock.advance(1.0))
        (ring,) = rings(b)
        assert ring["callback_id"] == callback_id

        await callbacks.sweep(b.clock.advance(29.0))
        assert b.notifier.to("C1003", "callback.ring_ended") == []
        await callbacks.sweep(b.clock.advance(1.5))  # past the 30 s ring
        (ended,) = b.notifier.to("C1003", "callback.ring_ended")
        assert ended["reason"] == "no_answer" and ended["next_attempt_at"] is not None

        await callbacks.sweep(b.clock.advance(590.0))
        assert len(rings(b)) == 1  # the retry delay (600 s) has not passed
        await callbacks.sweep(b.clock.advance(15.0))
        assert len(rings(b)) == 2


async def test_no_ring_outside_the_hours_and_the_callback_waits_for_the_next_opening(
    unit_database: str,
) -> None:
    async with branch(unit_database, **CALLBACK_SETTINGS) as b:
        b.clock.advance(12 * 3600.0)  # 20:00 in Shanghai: the hours are over
        callbacks, callback_id = await waiting_callback(b)
        await callbacks.sweep(b.clock.advance(1.0))
        assert rings(b) == []
        view = await callbacks.get(Principal(Role.CUSTOMER, "C1003"), callback_id)
        assert view["state"] != "ringing"
        for _hour in range(11):  # through the night, an hour at a time
            await callbacks.sweep(b.clock.advance(3600.0))
        assert rings(b) == []  # 07:00 and a bit: still closed
        await callbacks.sweep(b.clock.advance(3600.0))  # past 08:00
        (ring,) = rings(b)
        assert ring["callback_id"] == callback_id
