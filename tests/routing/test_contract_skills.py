"""The queue backend contract for routing by need: the skill step of the ladder.

Same fixtures as ``test_contract.py`` (both backends). Policy: skill step 15 s
(5 s urgent) inside the dialect step's 30 s (10 s urgent). Intents and the skills
that cover them are in ``server/routing/intents.py`` (``deposit`` is covered by
``deposit`` or ``time_deposit``, ``loss_report`` also by ``passbook``).
"""

from __future__ import annotations

import pytest

from server.routing.backend import QueueBackend
from server.routing.errors import OfferExpired
from server.routing.estimate import estimate_waits
from server.routing.model import (
    LadderStep,
    PriorityClass,
    SpecialistProfile,
    SpecialistState,
)
from tests.routing.support import call, staff

SKILL, DIALECT, ANY = LadderStep.SKILL, LadderStep.DIALECT, LadderStep.ANY
TRANSFER = frozenset({"transfer"})


async def only_offer(backend: QueueBackend, now: float) -> tuple[str, str, LadderStep]:
    offers = await backend.dispatch(now)
    assert len(offers) == 1, offers
    return offers[0].call_id, offers[0].specialist_id, offers[0].step


async def steps(backend: QueueBackend, now: float) -> dict[str, LadderStep]:
    return {w.call.call_id: w.step for w in (await backend.snapshot(now)).waiting}


async def test_dialect_and_skill_beat_dialect_alone_and_anyone(backend: QueueBackend) -> None:
    await staff(backend, "anyone", {"cmn": 5}, at=0, skills=TRANSFER)
    await staff(backend, "speaker", {"wuu": 5}, at=1, skills=frozenset({"card"}))
    await staff(backend, "speaker-skilled", {"wuu": 4}, at=2, skills=TRANSFER)
    await backend.enqueue(call("c1", "wuu", at=3, intent="transfer"), 3)
    assert await only_offer(backend, 3) == ("c1", "speaker-skilled", SKILL)


async def test_the_ladder_runs_skill_then_dialect_then_any(backend: QueueBackend) -> None:
    await staff(backend, "anyone", {"cmn": 5}, at=0)
    await staff(backend, "speaker", {"wuu": 5}, at=0, available=False)
    await staff(backend, "skilled", {"wuu": 5}, at=0, available=False, skills=TRANSFER)
    await backend.enqueue(call("c1", "wuu", at=0, intent="transfer"), 0)
    assert await backend.dispatch(14.9) == []
    assert await steps(backend, 14.9) == {"c1": SKILL}
    assert await steps(backend, 15) == {"c1": DIALECT}
    assert await backend.dispatch(29.9) == []
    assert await only_offer(backend, 30) == ("c1", "anyone", ANY)


async def test_after_the_skill_wait_a_speaker_without_the_skill_takes_it(
    backend: QueueBackend,
) -> None:
    await staff(backend, "speaker", {"yue": 5}, at=0)
    await staff(backend, "skilled", {"yue": 5}, at=0, available=False, skills=TRANSFER)
    await backend.enqueue(call("c1", "yue", at=0, intent="transfer"), 0)
    assert await backend.dispatch(14) == []
    assert await only_offer(backend, 15) == ("c1", "speaker", DIALECT)


async def test_a_call_without_a_dialect_waits_for_the_skill_then_anyone(
    backend: QueueBackend,
) -> None:
    await staff(backend, "anyone", {"cmn": 5}, at=0)
    await staff(backend, "skilled", {"yue": 5}, at=0, available=False, skills=TRANSFER)
    await backend.enqueue(call("c1", None, at=0, intent="transfer"), 0)
    assert await steps(backend, 0) == {"c1": SKILL}
    assert await backend.dispatch(14.9) == []
    assert await only_offer(backend, 15) == ("c1", "anyone", ANY)


async def test_skilled_specialist_without_the_dialect_is_not_preferred(
    backend: QueueBackend,
) -> None:
    await staff(backend, "skilled-elsewhere", {"cmn": 5}, at=0, skills=TRANSFER)
    await staff(backend, "speaker", {"wuu": 5}, at=1)
    await backend.enqueue(call("c1", "wuu", at=2, intent="transfer"), 2)
    # Nobody logged in has both: the skill step is skipped, the dialect step applies.
    assert await only_offer(backend, 2) == ("c1", "speaker", DIALECT)


async def test_urgent_calls_have_a_shorter_skill_step(backend: QueueBackend) -> None:
    await staff(backend, "speaker", {"yue": 5}, at=0)
    await staff(backend, "skilled", {"yue": 5}, at=0, available=False, skills=TRANSFER)
    urgent = call("urgent", "yue", PriorityClass.URGENT, at=0, intent="transfer")
    await backend.enqueue(urgent, 0)
    await backend.enqueue(call("normal", "yue", at=0, intent="transfer"), 0)
    assert await backend.dispatch(4.9) == []
    assert await only_offer(backend, 5) == ("urgent", "speaker", DIALECT)
    assert await steps(backend, 5) == {"urgent": DIALECT, "normal": SKILL}


async def test_intents_map_to_skills_explicitly(backend: QueueBackend) -> None:
    await staff(backend, "anyone", {"cmn": 5}, at=0)
    await staff(backend, "passbook", {"cmn": 5}, at=1, skills=frozenset({"passbook"}))
    await staff(backend, "deposits", {"cmn": 5}, at=2, skills=frozenset({"time_deposit"}))
    await backend.enqueue(call("deposit", "cmn", at=3, intent="deposit"), 3)
    await backend.enqueue(call("lost", "cmn", at=4, intent="loss_report"), 4)
    offers = await backend.dispatch(4)
    assert sorted((o.call_id, o.specialist_id, o.step) for o in offers) == [
        ("deposit", "deposits", SKILL),
        ("lost", "passbook", SKILL),
    ]


@pytest.mark.parametrize("intent", [None, "other", "something-unmapped"])
async def test_no_skill_preference_starts_at_the_dialect_step(
    backend: QueueBackend, intent: str | None
) -> None:
    await staff(backend, "speaker", {"wuu": 5}, at=0, skills=frozenset())
    await staff(backend, "skilled", {"wuu": 5}, at=1, skills=TRANSFER)
    await backend.enqueue(call("c1", "wuu", at=2, intent=intent), 2)
    # The longest idle fluent specialist, as before skills were routed.
    assert await only_offer(backend, 2) == ("c1", "speaker", DIALECT)


async def test_skill_step_with_nobody_logged_in_is_skipped_at_once(
    backend: QueueBackend,
) -> None:
    await staff(backend, "speaker", {"wuu": 5}, at=0)
    await backend.register(SpecialistProfile("skilled", {"wuu": 5}, TRANSFER))  # not logged in
    await backend.enqueue(call("c1", "wuu", at=0, intent="transfer"), 0)
    assert await steps(backend, 0) == {"c1": DIALECT}
    assert await only_offer(backend, 0) == ("c1", "speaker", DIALECT)


async def test_waiting_calls_move_on_when_the_last_skilled_specialist_logs_out(
    backend: QueueBackend,
) -> None:
    await staff(backend, "speaker", {"wuu": 5}, at=0, available=False)
    await staff(backend, "anyone", {"cmn": 5}, at=0)
    await staff(backend, "skilled-1", {"wuu": 5}, at=0, available=False, skills=TRANSFER)
    await staff(backend, "skilled-2", {"wuu": 3}, at=0, available=False, skills=TRANSFER)
    await backend.enqueue(call("c1", "wuu", at=0, intent="transfer"), 0)
    await backend.disconnect("skilled-1", 1)
    assert await steps(backend, 1) == {"c1": SKILL}  # skilled-2 still has it
    await backend.disconnect("skilled-2", 2)
    assert await steps(backend, 2) == {"c1": DIALECT}
    # ...and once the dialect's last speakers are gone too, anyone.
    await backend.disconnect("speaker", 3)
    assert await only_offer(backend, 3) == ("c1", "anyone", ANY)


async def test_losing_the_skill_by_profile_update_skips_its_step(backend: QueueBackend) -> None:
    await staff(backend, "speaker", {"yue": 5}, at=0)
    await staff(backend, "skilled", {"yue": 5}, at=0, available=False, skills=TRANSFER)
    await backend.enqueue(call("c1", "yue", at=0, intent="transfer"), 0)
    assert await backend.dispatch(1) == []
    await backend.register(SpecialistProfile("skilled", {"yue": 5}, frozenset({"card"})))
    assert await only_offer(backend, 2) == ("c1", "speaker", DIALECT)


async def test_skill_step_with_a_dialect_nobody_speaks_goes_to_any(
    backend: QueueBackend,
) -> None:
    await staff(backend, "anyone", {"cmn": 5}, at=0)
    await staff(backend, "skilled", {"yue": 5}, at=0, available=False, skills=TRANSFER)
    await backend.enqueue(call("c1", "yue", at=0, intent="transfer"), 0)
    await backend.disconnect("skilled", 1)  # the only yue speaker, and the only skilled one
    assert await only_offer(backend, 1) == ("c1", "anyone", ANY)


async def test_an_offered_skill_call_moves_on_in_time_and_returns_on_its_new_step(
    backend: QueueBackend,
) -> None:
    await staff(backend, "skilled", {"wuu": 5}, at=0, skills=TRANSFER)
    await backend.enqueue(call("c1", "wuu", at=0, intent="transfer"), 0)
    [offer] = await backend.dispatch(10)
    assert offer.step is SKILL
    # The lease runs past the skill deadline: the call moves on while offered...
    assert await steps(backend, 16) == {"c1": DIALECT}
    await staff(backend, "speaker", {"wuu": 5}, at=16)
    assert await backend.dispatch(16) == []  # ...still offered to one specialist only
    assert await backend.decline(offer.offer_id, "skilled", 17) == offer
    # Back in its place on the dialect step: the longest idle speaker gets it.
    assert await only_offer(backend, 17) == ("c1", "speaker", DIALECT)
    # ...and past the dialect deadline, while offered again, it reaches "any".
    assert await steps(backend, 30) == {"c1": ANY}


async def test_skill_step_keeps_atomic_offers_and_leases(backend: QueueBackend) -> None:
    await staff(backend, "skilled", {"cmn": 5}, at=0, skills=TRANSFER)
    await backend.enqueue(call("c1", "cmn", at=0, intent="transfer"), 0)
    await backend.enqueue(call("c2", "cmn", at=1, intent="transfer"), 1)
    [offer] = await backend.dispatch(1)
    assert (offer.call_id, offer.step) == ("c1", SKILL)
    assert await backend.dispatch(1) == []  # one offer per specialist
    [expired] = await backend.expire_offers(1 + backend.policy.offer_lease_s)
    assert expired.offer == offer
    view = await backend.specialist("skilled")
    assert view is not None and view.misses == 1
    with pytest.raises(OfferExpired):
        await backend.accept(offer.offer_id, "skilled", 16)
    # The call kept its place: offered again first, now on the dialect step.
    assert await only_offer(backend, 16) == ("c1", "skilled", DIALECT)
    pending = await backend.pending_offer("skilled")
    assert pending is not None
    assert (await backend.accept(pending.offer_id, "skilled", 17)).call_id == "c1"
    assert await backend.position("c2") == 1


async def test_specialist_views_name_the_intents_their_skills_cover(
    backend: QueueBackend,
) -> None:
    skills = frozenset({"passbook", "time_deposit", "unknown-skill"})
    await staff(backend, "s1", {"cmn": 5}, at=0, skills=skills)
    view = await backend.specialist("s1")
    assert view is not None
    assert view.intents == {"passbook", "loss_report", "deposit"}
    assert view.state is SpecialistState.AVAILABLE
    [snapshot_view] = (await backend.snapshot(0)).specialists
    assert snapshot_view == view
    # Registering again with other skills: the views follow.
    await backend.register(SpecialistProfile("s1", {"cmn": 5}, frozenset({"transfer"})))
    view = await backend.specialist("s1")
    assert view is not None and view.intents == {"transfer"}
    [snapshot_view] = (await backend.snapshot(1)).specialists
    assert snapshot_view == view


async def test_snapshots_carry_the_intent_and_estimates_count_skilled_specialists(
    backend: QueueBackend,
) -> None:
    # Two busy transfer specialists who speak wuu, one busy wuu speaker without it.
    for name, skills in (("t1", TRANSFER), ("t2", TRANSFER), ("plain", frozenset())):
        await staff(backend, name, {"wuu": 5}, at=0, skills=skills)
    await backend.enqueue(call("warm-1", "wuu", at=0), 0)
    await backend.enqueue(call("warm-2", "wuu", at=0), 0)
    await backend.enqueue(call("warm-3", "wuu", at=0), 0)
    for offer in await backend.dispatch(0):
        await backend.accept(offer.offer_id, offer.specialist_id, 0)
    await backend.enqueue(call("c1", "wuu", at=1, intent="transfer"), 1)
    snapshot = await backend.snapshot(1)
    [waiting] = snapshot.waiting
    assert waiting.call.intent == "transfer" and waiting.step is SKILL
    # Two working specialists can take it, none idle: one completion at 2 per AHT.
    assert estimate_waits(snapshot, aht_s=300)["c1"].seconds == 150
