"""The queue backend contract: identical tests for the in-process and Redis backends.

Times are plain seconds from 0; the policy is ``routing_support.POLICY`` (dialect
step 30 s, 10 s for urgent calls; weights 0/120/600 s; 15 s leases; 3 misses; 45 s
presence TTL).
"""

from __future__ import annotations

import pytest

from server.routing.backend import QueueBackend
from server.routing.errors import OfferExpired, SpecialistNotFound
from server.routing.model import (
    DesiredPresence,
    LadderStep,
    PriorityClass,
    SpecialistProfile,
    SpecialistState,
)
from tests.routing.support import call, staff

URGENT = PriorityClass.URGENT
REDIRECT = PriorityClass.REDIRECT
AVAILABLE = DesiredPresence.AVAILABLE
AWAY = DesiredPresence.AWAY


async def only_offer(backend: QueueBackend, now: float) -> tuple[str, str, LadderStep]:
    """Dispatch, expect exactly one offer, return (call id, specialist id, step)."""
    offers = await backend.dispatch(now)
    assert len(offers) == 1, offers
    offer = offers[0]
    assert offer.created_at == now
    assert offer.expires_at == now + backend.policy.offer_lease_s
    return offer.call_id, offer.specialist_id, offer.step


# -- the ladder ------------------------------------------------------------------


async def test_dialect_speaker_is_preferred_over_a_longer_idle_specialist(
    backend: QueueBackend,
) -> None:
    await staff(backend, "mandarin", {"cmn": 5}, at=0)
    await staff(backend, "cantonese", {"yue": 5}, at=1)
    await backend.enqueue(call("c1", "yue", at=2), 2)
    assert await only_offer(backend, 2) == ("c1", "cantonese", LadderStep.DIALECT)


async def test_any_specialist_takes_the_call_after_the_dialect_wait(backend: QueueBackend) -> None:
    await staff(backend, "mandarin", {"cmn": 5})
    await staff(backend, "cantonese", {"yue": 5}, available=False)  # logged in, away
    await backend.enqueue(call("c1", "yue", at=0), 0)
    assert await backend.dispatch(0) == []
    assert await backend.dispatch(29.9) == []
    assert (await backend.snapshot(29.9)).waiting[0].step is LadderStep.DIALECT
    assert await only_offer(backend, 30) == ("c1", "mandarin", LadderStep.ANY)


async def test_urgent_calls_have_a_shorter_ladder(backend: QueueBackend) -> None:
    await staff(backend, "mandarin", {"cmn": 5})
    await staff(backend, "cantonese", {"yue": 5}, available=False)
    await backend.enqueue(call("normal", "yue", at=0), 0)
    await backend.enqueue(call("urgent", "yue", URGENT, at=0), 0)
    assert await backend.dispatch(9.9) == []
    assert await only_offer(backend, 10) == ("urgent", "mandarin", LadderStep.ANY)
    snapshot = await backend.snapshot(10)
    assert [(w.call.call_id, w.step) for w in snapshot.waiting] == [
        ("urgent", LadderStep.ANY),
        ("normal", LadderStep.DIALECT),
    ]


async def test_dialect_step_with_nobody_logged_in_is_skipped_at_once(
    backend: QueueBackend,
) -> None:
    await staff(backend, "mandarin", {"cmn": 5})
    await backend.register(SpecialistProfile("cantonese", {"yue": 5}))  # not logged in
    await staff(backend, "weak", {"yue": 2})  # logged in, below the threshold
    await backend.enqueue(call("c1", "yue", at=0), 0)
    assert (await backend.snapshot(0)).waiting[0].step is LadderStep.ANY
    assert await only_offer(backend, 0) == ("c1", "mandarin", LadderStep.ANY)


async def test_waiting_calls_move_on_when_the_last_speaker_logs_out(backend: QueueBackend) -> None:
    await staff(backend, "mandarin", {"cmn": 5})
    await staff(backend, "yue-1", {"yue": 5}, available=False)
    await staff(backend, "yue-2", {"yue": 4}, available=False)
    await backend.enqueue(call("c1", "yue", at=0), 0)
    assert await backend.disconnect("yue-1", 5) is None
    assert await backend.dispatch(5) == []  # yue-2 still speaks it
    await backend.disconnect("yue-2", 6)
    assert await only_offer(backend, 6) == ("c1", "mandarin", LadderStep.ANY)


async def test_offered_dialect_call_moves_on_when_its_speaker_leaves(
    backend: QueueBackend,
) -> None:
    await staff(backend, "cantonese", {"yue": 5}, at=0)
    await backend.enqueue(call("c1", "yue", at=0), 0)
    assert await only_offer(backend, 0) == ("c1", "cantonese", LadderStep.DIALECT)
    await staff(backend, "mandarin", {"cmn": 5}, at=1)
    withdrawn = await backend.disconnect("cantonese", 2)
    assert withdrawn is not None and withdrawn.call_id == "c1"
    assert await only_offer(backend, 2) == ("c1", "mandarin", LadderStep.ANY)
    view = await backend.specialist("cantonese")
    assert view is not None and view.state is SpecialistState.OFFLINE and view.misses == 0


async def test_losing_a_dialect_by_profile_update_skips_its_step(backend: QueueBackend) -> None:
    await staff(backend, "mandarin", {"cmn": 5})
    await staff(backend, "cantonese", {"yue": 5}, available=False)
    await backend.enqueue(call("c1", "yue", at=0), 0)
    assert await backend.dispatch(1) == []
    await backend.register(SpecialistProfile("cantonese", {"yue": 2, "cmn": 4}))
    assert await only_offer(backend, 2) == ("c1", "mandarin", LadderStep.ANY)


# -- order -------------------------------------------------------------------------


async def test_priority_weights_order_the_queue(backend: QueueBackend) -> None:
    assert await backend.enqueue(call("normal", at=0), 0) == 1
    assert await backend.enqueue(call("redirect", priority=REDIRECT, at=100), 100) == 1
    assert await backend.enqueue(call("urgent", priority=URGENT, at=200), 200) == 1
    assert [await backend.position(c) for c in ("urgent", "redirect", "normal")] == [1, 2, 3]
    await staff(backend, "s1", {"cmn": 5}, at=200)
    assert (await only_offer(backend, 200))[0] == "urgent"


async def test_a_normal_call_that_waited_long_beats_a_new_urgent_one(
    backend: QueueBackend,
) -> None:
    await backend.enqueue(call("old-normal", at=0), 0)
    # 601 s later an urgent call (weight 600 s) still ranks behind it...
    assert await backend.enqueue(call("late-urgent", priority=URGENT, at=601), 601) == 2
    # ...while one that came 599 s later would not have.
    assert await backend.enqueue(call("early-urgent", priority=URGENT, at=599), 601) == 1
    await staff(backend, "s1", {"cmn": 5}, at=601)
    await staff(backend, "s2", {"cmn": 5}, at=601)
    await staff(backend, "s3", {"cmn": 5}, at=601)
    offers = await backend.dispatch(601)
    assert [o.call_id for o in offers] == ["early-urgent", "old-normal", "late-urgent"]


async def test_equal_rank_keys_keep_arrival_order(backend: QueueBackend) -> None:
    for call_id in ("c-b", "c-a", "c-c"):
        await backend.enqueue(call(call_id, at=5), 5)
    assert [w.call.call_id for w in (await backend.snapshot(5)).waiting] == ["c-b", "c-a", "c-c"]
    await staff(backend, "s1", {"cmn": 5}, at=5)
    assert (await only_offer(backend, 5))[0] == "c-b"


async def test_longest_idle_specialist_gets_the_offer(backend: QueueBackend) -> None:
    await staff(backend, "late", {"cmn": 5}, at=5)
    await staff(backend, "early", {"cmn": 5}, at=1)
    await staff(backend, "middle", {"cmn": 5}, at=3)
    await backend.enqueue(call("c1", at=6), 6)
    assert (await only_offer(backend, 6))[1] == "early"
    await backend.enqueue(call("c2", at=7), 7)
    assert (await only_offer(backend, 7))[1] == "middle"


async def test_one_dispatch_pairs_every_call_it_can(backend: QueueBackend) -> None:
    await staff(backend, "mandarin", {"cmn": 5}, at=0)
    await staff(backend, "cantonese", {"yue": 5}, at=1)
    await staff(backend, "shanghainese", {"wuu": 5}, at=2)
    await backend.enqueue(call("wuu-1", "wuu", at=3), 3)
    await backend.enqueue(call("yue-1", "yue", at=4), 4)
    await backend.enqueue(call("any-1", at=5), 5)
    await backend.enqueue(call("any-2", at=6), 6)
    offers = await backend.dispatch(6)
    assert [(o.call_id, o.specialist_id, o.step) for o in offers] == [
        ("wuu-1", "shanghainese", LadderStep.DIALECT),
        ("yue-1", "cantonese", LadderStep.DIALECT),
        ("any-1", "mandarin", LadderStep.ANY),
    ]
    assert await backend.position("any-2") == 4


# -- offers and leases ---------------------------------------------------------------


async def test_lease_expiry_withdraws_keeps_the_place_and_counts_a_miss(
    backend: QueueBackend,
) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(1)
    await backend.enqueue(call("c2", at=2), 2)
    assert await backend.expire_offers(15.9) == []
    [expired] = await backend.expire_offers(16)
    assert expired.offer == offer and not expired.specialist_now_away
    assert await backend.position("c1") == 1
    assert await backend.pending_offer("s1") is None
    view = await backend.specialist("s1")
    assert view is not None and view.misses == 1 and view.state is SpecialistState.AVAILABLE
    with pytest.raises(OfferExpired):
        await backend.accept(offer.offer_id, "s1", 16)
    [again] = await backend.dispatch(16)
    assert again.call_id == "c1" and again.offer_id != offer.offer_id


async def test_expiry_sends_the_specialist_to_the_back_of_the_idle_order(
    backend: QueueBackend,
) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    await backend.dispatch(0)
    await staff(backend, "s2", {"cmn": 5}, at=5)
    await backend.expire_offers(15)
    assert (await only_offer(backend, 15))[1] == "s2"


async def test_consecutive_misses_put_the_specialist_away(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    now = 0.0
    for miss in (1, 2, 3):
        [offer] = await backend.dispatch(now)
        now = offer.expires_at
        [expired] = await backend.expire_offers(now)
        assert expired.specialist_now_away is (miss == 3)
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.AWAY and view.misses == 3
    assert await backend.dispatch(now) == []
    assert await backend.set_presence("s1", AVAILABLE, now) is SpecialistState.AVAILABLE
    view = await backend.specialist("s1")
    assert view is not None and view.misses == 0
    assert len(await backend.dispatch(now)) == 1


async def test_accepting_resets_the_miss_count(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(0)
    await backend.expire_offers(offer.expires_at)
    [offer] = await backend.dispatch(20)
    await backend.accept(offer.offer_id, "s1", 21)
    view = await backend.specialist("s1")
    assert view is not None and view.misses == 0 and view.call_id == "c1"


async def test_decline_is_not_a_miss_and_goes_to_the_back_of_the_idle_order(
    backend: QueueBackend,
) -> None:
    for at, specialist_id in enumerate(("s1", "s2", "s3")):
        await staff(backend, specialist_id, {"cmn": 5}, at=at)
    await backend.enqueue(call("c1", at=3), 3)
    [offer] = await backend.dispatch(3)
    assert offer.specialist_id == "s1"
    declined = await backend.decline(offer.offer_id, "s1", 4)
    assert declined == offer
    view = await backend.specialist("s1")
    assert view is not None and view.misses == 0 and view.state is SpecialistState.AVAILABLE
    assert await backend.position("c1") == 1
    assert await only_offer(backend, 4) == ("c1", "s2", LadderStep.ANY)
    await backend.enqueue(call("c2", at=5), 5)
    assert (await only_offer(backend, 5))[1] == "s3"
    await backend.enqueue(call("c3", at=6), 6)
    assert (await only_offer(backend, 6))[1] == "s1"
    with pytest.raises(OfferExpired):
        await backend.decline(offer.offer_id, "s1", 7)


async def test_accept_after_the_lease_ended_raises(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(0)
    with pytest.raises(OfferExpired):
        await backend.accept(offer.offer_id, "s1", offer.expires_at)
    with pytest.raises(OfferExpired):
        await backend.decline(offer.offer_id, "s1", offer.expires_at)
    # Not withdrawn yet, but no longer acceptable.
    assert (await backend.snapshot(offer.expires_at)).waiting[0].offered


async def test_accept_just_before_the_lease_ends(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(0)
    assignment = await backend.accept(offer.offer_id, "s1", 14.99)
    assert (assignment.call_id, assignment.specialist_id, assignment.accepted_at) == (
        "c1",
        "s1",
        14.99,
    )
    assert await backend.position("c1") is None
    assert await backend.expire_offers(100) == []


async def test_accept_by_the_wrong_specialist_raises(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await staff(backend, "s2", {"cmn": 5}, at=1)
    await backend.enqueue(call("c1", at=1), 1)
    [offer] = await backend.dispatch(1)
    assert offer.specialist_id == "s1"
    with pytest.raises(OfferExpired):
        await backend.accept(offer.offer_id, "s2", 2)
    with pytest.raises(OfferExpired):
        await backend.decline(offer.offer_id, "s2", 2)
    with pytest.raises(OfferExpired):
        await backend.accept("no-such-offer", "s1", 2)
    await backend.accept(offer.offer_id, "s1", 2)
    with pytest.raises(OfferExpired):
        await backend.accept(offer.offer_id, "s1", 2)


async def test_pending_offer(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    assert await backend.pending_offer("s1") is None
    assert await backend.pending_offer("nobody") is None
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(0)
    assert await backend.pending_offer("s1") == offer
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.RESERVED


# -- specialists at work -----------------------------------------------------------------


async def test_a_specialist_holds_one_call_at_a_time(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    await backend.enqueue(call("c2", at=0), 0)
    [offer] = await backend.dispatch(0)
    assert offer.call_id == "c1"
    assert await backend.dispatch(1) == []  # reserved: no second offer
    await backend.accept(offer.offer_id, "s1", 1)
    assert await backend.dispatch(2) == []  # busy
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.BUSY and view.call_id == "c1"
    assert await backend.position("c2") == 1


async def test_wrap_up_then_available_again(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    await backend.enqueue(call("c2", at=0), 0)
    [offer] = await backend.dispatch(0)
    await backend.accept(offer.offer_id, "s1", 1)
    await backend.end_call("s1", 50)
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.WRAP_UP and view.call_id == "c1"
    assert await backend.dispatch(55) == []
    assert await backend.finish_wrap_up("s1", 60) is SpecialistState.AVAILABLE
    assert await only_offer(backend, 60) == ("c2", "s1", LadderStep.ANY)


async def test_away_asked_while_busy_applies_after_wrap_up(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    await backend.enqueue(call("c2", at=0), 0)
    [offer] = await backend.dispatch(0)
    await backend.accept(offer.offer_id, "s1", 1)
    assert await backend.set_presence("s1", AWAY, 2) is SpecialistState.BUSY
    await backend.end_call("s1", 3)
    assert await backend.finish_wrap_up("s1", 4) is SpecialistState.AWAY
    assert await backend.dispatch(4) == []


async def test_away_asked_while_reserved_applies_after_the_offer(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(0)
    assert await backend.set_presence("s1", AWAY, 1) is SpecialistState.RESERVED
    await backend.decline(offer.offer_id, "s1", 2)
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.AWAY
    assert await backend.dispatch(2) == []


async def test_an_offline_desk_gets_no_offers(backend: QueueBackend) -> None:
    await backend.register(SpecialistProfile("s1", {"cmn": 5}))
    assert await backend.set_presence("s1", AVAILABLE, 0) is SpecialistState.OFFLINE
    await backend.enqueue(call("c1", at=0), 0)
    assert await backend.dispatch(0) == []
    assert await backend.connect("s1", 1) is SpecialistState.AVAILABLE
    await backend.disconnect("s1", 2)
    assert await backend.dispatch(2) == []
    assert await backend.connect("s1", 3) is SpecialistState.AVAILABLE
    assert await only_offer(backend, 3) == ("c1", "s1", LadderStep.ANY)


async def test_a_new_desk_starts_away(backend: QueueBackend) -> None:
    await backend.register(SpecialistProfile("s1", {"cmn": 5}))
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.OFFLINE
    assert await backend.connect("s1", 0) is SpecialistState.AWAY


async def test_reap_stale_disconnects_silent_desks(backend: QueueBackend) -> None:
    await staff(backend, "silent", {"cmn": 5}, at=0)
    await staff(backend, "alive", {"cmn": 5}, at=1)
    await backend.heartbeat("alive", 30)
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(0)
    assert offer.specialist_id == "silent"
    assert await backend.reap_stale(45) == []  # last seen exactly at the cutoff
    assert await backend.reap_stale(45.5) == [offer]
    view = await backend.specialist("silent")
    assert view is not None and view.state is SpecialistState.OFFLINE
    await backend.heartbeat("silent", 46)  # a late heartbeat does not log it back in
    view = await backend.specialist("silent")
    assert view is not None and view.state is SpecialistState.OFFLINE
    assert await backend.reap_stale(200) == []  # "alive" goes too, without an offer
    view = await backend.specialist("alive")
    assert view is not None and view.state is SpecialistState.OFFLINE


async def test_reap_stale_returns_offers_and_frees_calls(backend: QueueBackend) -> None:
    await staff(backend, "silent", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(0)
    await staff(backend, "alive", {"cmn": 5}, at=10)
    assert await backend.reap_stale(50) == [offer]
    assert await only_offer(backend, 50) == ("c1", "alive", LadderStep.ANY)


async def test_unknown_specialists(backend: QueueBackend) -> None:
    for operation in (
        backend.connect("ghost", 0),
        backend.set_presence("ghost", AVAILABLE, 0),
        backend.end_call("ghost", 0),
        backend.finish_wrap_up("ghost", 0),
    ):
        with pytest.raises(SpecialistNotFound):
            await operation
    assert await backend.specialist("ghost") is None
    assert await backend.disconnect("ghost", 0) is None
    await backend.heartbeat("ghost", 0)


async def test_profile_update_keeps_the_idle_place(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await staff(backend, "s2", {"cmn": 5}, at=1)
    await backend.register(SpecialistProfile("s1", {"cmn": 5, "yue": 4}))
    view = await backend.specialist("s1")
    assert view is not None and view.fluent_dialects == {"cmn", "yue"}
    await backend.enqueue(call("c1", "yue", at=2), 2)
    assert await only_offer(backend, 2) == ("c1", "s1", LadderStep.DIALECT)


# -- calls -------------------------------------------------------------------------------


async def test_positions(backend: QueueBackend) -> None:
    assert await backend.enqueue(call("c1", at=0), 0) == 1
    assert await backend.enqueue(call("c2", at=1), 1) == 2
    assert await backend.enqueue(call("c3", at=2), 2) == 3
    assert await backend.position("c2") == 2
    assert await backend.remove("c2", 3) is None
    assert [await backend.position(c) for c in ("c1", "c2", "c3")] == [1, None, 2]
    assert await backend.position("never") is None
    # Offered calls keep their place.
    await staff(backend, "s1", {"cmn": 5}, at=3)
    await backend.dispatch(3)
    assert [await backend.position(c) for c in ("c1", "c3")] == [1, 2]


async def test_remove_during_an_offer_frees_the_specialist(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await backend.enqueue(call("c1", at=0), 0)
    [offer] = await backend.dispatch(0)
    assert await backend.remove("c1", 1) == offer
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.AVAILABLE and view.misses == 0
    assert await backend.pending_offer("s1") is None
    assert await backend.position("c1") is None
    with pytest.raises(OfferExpired):
        await backend.accept(offer.offer_id, "s1", 2)
    assert await backend.remove("c1", 2) is None
    assert await backend.remove("never", 2) is None
    assert await backend.expire_offers(100) == []
    await backend.enqueue(call("c2", at=3), 3)
    assert await only_offer(backend, 3) == ("c2", "s1", LadderStep.ANY)


async def test_enqueue_is_idempotent(backend: QueueBackend) -> None:
    await backend.enqueue(call("c0", at=0), 0)
    assert await backend.enqueue(call("c1", at=1), 1) == 2
    assert await backend.enqueue(call("c1", priority=URGENT, at=5), 5) == 2
    snapshot = await backend.snapshot(5)
    assert [w.call for w in snapshot.waiting] == [call("c0", at=0), call("c1", at=1)]


async def test_enqueue_again_after_remove_starts_a_new_ladder(backend: QueueBackend) -> None:
    await staff(backend, "mandarin", {"cmn": 5})
    await staff(backend, "cantonese", {"yue": 5}, available=False)
    await backend.enqueue(call("c1", "yue", at=0), 0)
    await backend.remove("c1", 20)
    await backend.enqueue(call("c1", "yue", at=20), 20)
    assert await backend.dispatch(35) == []  # the first ladder's deadline is gone
    assert await only_offer(backend, 50) == ("c1", "mandarin", LadderStep.ANY)


async def test_snapshot_contents(backend: QueueBackend) -> None:
    await staff(backend, "mandarin", {"cmn": 5, "wuu": 2}, at=0)
    await staff(backend, "cantonese", {"yue": 4}, at=1, available=False)
    await backend.register(SpecialistProfile("offline", {"wuu": 5}))
    await backend.enqueue(call("yue-1", "yue", at=2), 2)
    await backend.enqueue(call("cmn-1", "cmn", REDIRECT, at=3), 3)
    await backend.enqueue(call("plain", at=4), 4)
    [offer] = await backend.dispatch(4)
    assert offer.call_id == "cmn-1"
    snapshot = await backend.snapshot(10)
    assert snapshot.taken_at == 10
    assert [
        (w.call.call_id, w.position, w.step, w.offered, w.call.priority, w.call.dialect)
        for w in snapshot.waiting
    ] == [
        ("cmn-1", 1, LadderStep.DIALECT, True, REDIRECT, "cmn"),
        ("yue-1", 2, LadderStep.DIALECT, False, PriorityClass.NORMAL, "yue"),
        ("plain", 3, LadderStep.ANY, False, PriorityClass.NORMAL, None),
    ]
    assert snapshot.waiting[0].call == call("cmn-1", "cmn", REDIRECT, at=3)
    assert [(s.specialist_id, s.state, s.fluent_dialects) for s in snapshot.specialists] == [
        ("mandarin", SpecialistState.RESERVED, frozenset({"cmn"})),
        ("cantonese", SpecialistState.AWAY, frozenset({"yue"})),
        ("offline", SpecialistState.OFFLINE, frozenset({"wuu"})),
    ]
    later = await backend.snapshot(40)  # the dialect step has ended for both
    assert [w.step for w in later.waiting] == [LadderStep.ANY] * 3


async def test_timestamps_survive_exactly(backend: QueueBackend) -> None:
    now = 1_763_800_000.123457
    await staff(backend, "s1", {"cmn": 5}, at=now)
    await backend.enqueue(call("c1", at=now), now)
    [offer] = await backend.dispatch(now + 0.1)
    assert offer.created_at == now + 0.1
    assert offer.expires_at == now + 0.1 + backend.policy.offer_lease_s
    assert (await backend.snapshot(now + 1)).waiting[0].call.enqueued_at == now
