"""Timing rules of the call service, on fakes: the clock is moved, never waited on.

The call service and its dispatcher run on the in-process queue backend, a fake
notifier and a local SQLite copy of the seeded template (tests/unit/fakes.py);
each dispatcher pass is run by the test after moving the clock.
Seeded desks: S06 (zhang.jun) speaks Mandarin only; S01 (chen.li) Mandarin and
Wu. Customers: C1003 prefers Mandarin, C1001 Wu.
"""

from __future__ import annotations

from typing import Any

from server.auth.principal import Principal, Role
from server.calls.state import CallState
from server.routing.model import DesiredPresence
from tests.unit.fakes import branch


async def test_an_offer_not_accepted_within_its_lease_goes_back_and_counts_a_miss(
    unit_database: str,
) -> None:
    async with branch(unit_database, offer_lease_s=15.0, max_consecutive_misses=3) as b:
        await b.desk_available("S06")
        call_id = await b.customer_calls("C1003")
        await b.tick()
        (offer,) = b.notifier.to("S06", "call.offered")
        assert offer["call_id"] == call_id
        await b.tick(14.0)
        assert (await b.call(call_id)).state == CallState.OFFERED.value
        assert b.notifier.to("S06", "call.offer_withdrawn") == []

        await b.tick(1.5)  # past the lease
        (withdrawn,) = b.notifier.to("S06", "call.offer_withdrawn")
        assert withdrawn["reason"] == "expired"
        assert "offer_expired" in await b.timeline(call_id)
        # Back in the queue, and offered again (the same desk is still available).
        assert len(b.notifier.to("S06", "call.offered")) == 2


async def test_three_missed_offers_in_a_row_set_the_desk_away(unit_database: str) -> None:
    async with branch(unit_database, offer_lease_s=10.0, max_consecutive_misses=3) as b:
        await b.desk_available("S06")
        await b.customer_calls("C1003")
        await b.tick()
        for _miss in range(3):
            await b.tick(10.5)
        away = b.notifier.to("S06", "presence.updated")
        assert away and away[-1]["state"] == "away" and away[-1]["reason"] == "missed_offers"
        offers = len(b.notifier.to("S06", "call.offered"))
        await b.tick(10.5)
        assert len(b.notifier.to("S06", "call.offered")) == offers  # away: no more offers


async def test_a_dialect_call_waits_for_a_speaker_then_moves_down_the_ladder(
    unit_database: str,
) -> None:
    async with branch(unit_database, dialect_wait_s=30.0) as b:
        # A Wu speaker is logged in (on a break), so the call waits for one first.
        await b.desk_available("S01", DesiredPresence.AWAY)
        await b.desk_available("S06")  # Mandarin only
        call_id = await b.customer_calls("C1001")  # prefers Wu
        await b.tick()
        await b.tick(29.0)
        assert b.notifier.to("S06", "call.offered") == []
        assert (await b.call(call_id)).state == CallState.QUEUED.value
        await b.tick(1.5)  # the ladder's next step: any dialect
        (offer,) = b.notifier.to("S06", "call.offered")
        assert offer["call_id"] == call_id


async def test_wrap_up_ends_by_itself_at_its_maximum(unit_database: str) -> None:
    async with branch(unit_database, wrap_up_max_s=300.0) as b:
        await b.desk_available("S06")
        call_id = await b.customer_calls("C1003")
        await b.tick()
        (offer,) = b.notifier.to("S06", "call.offered")
        desk = Principal(Role.SPECIALIST, "S06")
        await b.calls.accept(desk, call_id, offer["offer_id"])
        await b.calls.end_by_specialist(desk, call_id)
        assert (await b.call(call_id)).state == CallState.WRAP_UP.value
        await b.tick(299.0)
        assert (await b.call(call_id)).state == CallState.WRAP_UP.value
        await b.tick(2.5)  # past the maximum, and a housekeeping pass is due
        call = await b.call(call_id)
        assert call.state == CallState.ENDED.value and call.wrap_up_code == "auto"


async def test_a_queued_call_whose_app_is_gone_is_abandoned(unit_database: str) -> None:
    async with branch(unit_database, abandon_after_s=120.0) as b:
        call_id = await b.customer_calls("C1003")  # no desk is available
        await b.tick()
        b.notifier.connected.discard((Role.CUSTOMER, "C1003"))  # the app went away
        await b.tick(119.0)
        assert (await b.call(call_id)).state == CallState.QUEUED.value
        await b.tick(3.0)
        call = await b.call(call_id)
        assert call.state == CallState.ENDED.value and call.end_reason == "abandoned"


async def test_a_customer_still_connected_is_not_abandoned(unit_database: str) -> None:
    async with branch(unit_database, abandon_after_s=120.0) as b:
        call_id = await b.customer_calls("C1003")
        for _pass in range(62):  # 124 s; each housekeeping pass (every 2 s) sees the app
            await b.tick(2.0)
        assert (await b.call(call_id)).state == CallState.QUEUED.value


async def test_a_redis_step_that_failed_after_its_commit_is_repaired_on_the_next_pass(
    unit_database: str,
) -> None:
    """The queue's change log does not move for a step that never reached Redis,
    so the repair pass must not wait for it (nor for its idle round) to look."""
    from server.routing.errors import RoutingError

    async with branch(unit_database) as b:
        repair = b.dispatcher.repair
        await repair._reconcile_if_moved(b.clock())  # in step with the change log
        backend = b.calls.backend
        real = backend.enqueue_standing

        async def lost(*args: object, **kwargs: object) -> object:
            raise RoutingError("the live state went away")

        backend.enqueue_standing = lost  # type: ignore[method-assign]
        call_id = await b.customer_calls("C1003")
        backend.enqueue_standing = real  # type: ignore[method-assign]
        assert (await b.call(call_id)).state == CallState.QUEUED.value
        assert await backend.position(call_id) is None
        # A suspect is confirmed on its second look: two passes, not twelve.
        await repair._reconcile_if_moved(b.clock.advance(5))
        await repair._reconcile_if_moved(b.clock.advance(5))
        assert await backend.position(call_id) == 1


async def test_a_reminder_repeats_the_hooks_fields_until_they_are_a_minute_old(
    unit_database: str,
) -> None:
    """Reminders do not ask the queue-update hooks (the callback option: an SQL read)
    every time; the fields they added go out again until they are a minute old."""
    async with branch(unit_database, queue_update_interval_s=15.0) as b:
        asked: list[list[str]] = []

        async def hook(updates: dict[str, dict[str, Any]]) -> None:
            asked.append(sorted(updates))
            for message in updates.values():
                message["callback_available"] = len(asked) % 2 == 1

        b.calls.queue_update_hooks = (hook,)
        call_id = await b.customer_calls("C1003")
        await b.tick()
        assert asked == [[call_id]]
        for _reminder in range(3):  # at 15, 30 and 45 s: the fields are younger than 60 s
            await b.tick(15.0)
        assert asked == [[call_id]]
        await b.tick(15.0)  # at 60 s: asked again
        assert asked == [[call_id], [call_id]]
        updates = b.notifier.to("C1003", "queue.update")
        assert len(updates) == 5
        assert [u["callback_available"] for u in updates] == [True] * 4 + [False]
