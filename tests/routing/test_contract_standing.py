"""Standings, the change log and staffing: identical tests for both backends.

A standing read from the sorted sets, and one moved change by change from the
log, must both give the figure a full snapshot gives (``estimate_waits``).
"""

from __future__ import annotations

import random

from server.routing.backend import QueueBackend
from server.routing.estimate import estimate_waits, standing_estimate
from server.routing.model import LadderStep, PriorityClass, SpecialistProfile
from server.routing.positions import NodePositions
from server.routing.standing import ChangeKind, Standing
from tests.routing.support import call, staff

URGENT = PriorityClass.URGENT
AHT = 240.0


async def figures_from_snapshot(backend: QueueBackend, now: float) -> dict[str, tuple[int, int]]:
    snapshot = await backend.snapshot(now)
    return {
        call_id: (e.position, e.seconds or 0)
        for call_id, e in estimate_waits(snapshot, AHT).items()
    }


def figures_from(standings: list[Standing], staffing: object) -> dict[str, tuple[int, int]]:
    out = {}
    for standing in standings:
        estimate = standing_estimate(standing, staffing, AHT)  # type: ignore[arg-type]
        out[standing.call_id] = (estimate.position, estimate.seconds or 0)
    return out


async def test_the_enqueue_script_answers_with_the_new_call_s_rank(
    backend: QueueBackend,
) -> None:
    await staff(backend, "cantonese", {"yue": 5}, at=0)
    first = await backend.enqueue_standing(call("a", "yue", at=1), 1)
    assert (first.position, first.step, first.ahead_any, first.ahead_dialect) == (
        1,
        LadderStep.DIALECT,
        0,
        0,
    )
    later = await backend.enqueue_standing(call("b", None, at=2), 2)
    assert (later.position, later.step, later.ahead_dialect) == (2, LadderStep.ANY, 0)
    # An urgent call overtakes both: its rank comes from the same script.
    urgent = await backend.enqueue_standing(call("c", "yue", URGENT, at=3), 3)
    assert (urgent.position, urgent.ahead_any, urgent.ahead_dialect) == (1, 0, 0)
    # Enqueueing again is idempotent and answers the current standing.
    again = await backend.enqueue_standing(call("b", None, at=2), 9)
    assert (again.position, again.ahead_any, again.ahead_dialect) == (3, 0, 0)
    assert await backend.enqueue(call("d", None, at=4), 4) == 4
    _, found = await backend.standings(["d", "b", "missing"])
    assert [(s.call_id, s.position, s.ahead_any) for s in found] == [("d", 4, 1), ("b", 3, 0)]


async def test_standings_give_the_snapshot_s_figures(backend: QueueBackend) -> None:
    await staff(backend, "cmn-1", {"cmn": 5}, at=0)
    await staff(backend, "yue-1", {"yue": 5}, at=0, skills=frozenset({"deposit"}))
    await staff(backend, "wuu-1", {"wuu": 4}, at=0, available=False)
    chance = random.Random(7)
    ids = []
    for n in range(40):
        dialect = chance.choice(["yue", "cmn", "wuu", None])
        intent = chance.choice([None, None, "time_deposit"])
        priority = chance.choice([PriorityClass.NORMAL] * 4 + [URGENT])
        await backend.enqueue(call(f"c{n:02d}", dialect, priority, at=n, intent=intent), n)
        ids.append(f"c{n:02d}")
    await backend.dispatch(40)  # two offers: offered calls still count
    _, standings = await backend.standings(ids)
    assert len(standings) == 40
    assert figures_from(standings, await backend.staffing()) == await figures_from_snapshot(
        backend, 40
    )


async def test_moving_standings_by_the_change_log_matches_reading_them_afresh(
    backend: QueueBackend,
) -> None:
    await staff(backend, "yue-1", {"yue": 5}, at=0, available=False)
    await staff(backend, "cmn-1", {"cmn": 5}, at=0, available=False)
    for n in range(12):
        dialect = ["yue", "cmn", None][n % 3]
        await backend.enqueue(call(f"c{n:02d}", dialect, at=n), n)
    held = NodePositions()
    held.hold({f"cust-c{n:02d}" for n in (*range(12), 99)})
    held.apply(await backend.queue_changes(0))
    version, standings = await backend.standings([f"c{n:02d}" for n in range(12)])
    held.put(standings)
    start = held.version

    # The head leaves, a call in the middle leaves, a new one arrives in front
    # of most, and the yue calls' dialect step ends (nobody fluent logged in).
    await backend.remove("c00", 20)
    await backend.remove("c05", 20)
    await backend.enqueue(call("c99", "yue", URGENT, at=20), 20)
    await backend.disconnect("yue-1", 21)
    changes = await backend.queue_changes(start)
    assert changes.complete
    kinds = [c.kind for c in changes.changes]
    assert kinds[:3] == [ChangeKind.LEFT, ChangeKind.LEFT, ChangeKind.ADDED]
    assert ChangeKind.STEPPED in kinds
    held.apply(changes)
    assert held.wanted == {"c99"}  # a held customer's new call: its standing is read
    _, fresh = await backend.standings([*held.call_ids(), "c99"])
    held.put([s for s in fresh if s.call_id == "c99"])
    assert sorted(held.call_ids()) == sorted(s.call_id for s in fresh)

    staffing = await backend.staffing()
    held.set_figures(staffing, AHT)
    told = {
        d.estimate.call_id: (d.estimate.position, d.estimate.seconds or 0)
        for d in held.due(30, 0.0, 60.0)
    }
    assert told == figures_from(fresh, staffing)
    assert version < held.version


async def test_a_reader_the_log_cannot_serve_is_told_to_read_again(
    backend: QueueBackend,
) -> None:
    await backend.enqueue(call("a", at=0), 0)
    now = await backend.queue_changes(0)
    assert now.complete and now.version == 1 and len(now.changes) == 1
    assert (await backend.queue_changes(1)).changes == ()
    # A version the backend never reached: its state was lost and rebuilt.
    assert not (await backend.queue_changes(5)).complete


async def test_staffing_counts_who_works_and_who_is_idle(backend: QueueBackend) -> None:
    await staff(backend, "a", {"yue": 5, "cmn": 3}, at=0)
    await staff(backend, "b", {"yue": 2}, at=0, available=False)
    await backend.register(SpecialistProfile("c", {"cmn": 5}))  # never logged in
    staffing = await backend.staffing()
    assert (staffing.everyone.working, staffing.everyone.idle) == (1, 1)
    assert (staffing.dialect("yue").working, staffing.dialect("cmn").idle) == (1, 1)
    assert staffing.dialect("wuu").working == 0


async def test_live_calls_name_the_waiting_the_offered_and_the_held(
    backend: QueueBackend,
) -> None:
    await staff(backend, "a", {"cmn": 5}, at=0)
    await staff(backend, "b", {"cmn": 5}, at=1)
    for n in range(3):
        await backend.enqueue(call(f"c{n}", at=2 + n), 2 + n)
    first, second = await backend.dispatch(5)
    await backend.accept(first.offer_id, first.specialist_id, 6)
    live = await backend.live_calls()
    assert live.waiting == {"c1", "c2"}
    assert live.offered == {second.call_id}
    assert live.holding == {first.specialist_id: first.call_id}


async def test_an_update_not_sent_is_due_again_on_the_next_pass(backend: QueueBackend) -> None:
    """The dispatcher holds back a call SQL does not show yet; its update must not
    count as told, or the customer would wait for the next change of words."""
    await backend.enqueue(call("a", None, at=1), 1)
    held = NodePositions()
    held.hold({"cust-a"})
    held.apply(await backend.queue_changes(0))
    _, standings = await backend.standings(["a"])
    held.put(standings)
    held.set_figures(await backend.staffing(), AHT)
    first = held.due(10, 0.25, 60)
    assert [d.estimate.call_id for d in first] == ["a"]
    assert held.due(11, 0.25, 60) == []  # told: nothing new to say
    held.untold("a")
    assert [d.estimate.call_id for d in held.due(12, 0.25, 60)] == ["a"]
    held.untold("gone")  # a call it does not hold: nothing to do
    assert held.due(13, 0.25, 60) == []


async def test_a_greeted_call_is_not_looked_up_or_told_again(backend: QueueBackend) -> None:
    """The hello told the customer their place: the next pass reads the call's
    standing (no SQL look-up of the customer) and says nothing new."""
    await backend.enqueue(call("a", None, at=1), 1)
    await backend.enqueue(call("b", None, at=2), 2)
    held = NodePositions()
    staffing = await backend.staffing()
    _, (_, second) = await backend.standings(["a", "b"])
    told = standing_estimate(second, staffing, AHT)
    held.greeted("cust-b", "b", told, at=5)
    held.hold({"cust-b"})
    held.apply(await backend.queue_changes(0))
    assert held.to_look_up() == [] and held.wanted == {"b"}
    _, standings = await backend.standings(sorted(held.wanted))
    held.put(standings)
    held.set_figures(staffing, AHT)
    assert held.due(6, 0.25, 60) == []
    # The head leaves: now the words change, and the customer is told.
    await backend.remove("a", 7)
    held.apply(await backend.queue_changes(held.version))
    (due,) = held.due(8, 0.25, 60)
    assert (due.customer_id, due.estimate.position) == ("cust-b", 1)


async def test_reminders_come_every_interval_counted_from_each_customer_s_last_update(
    backend: QueueBackend,
) -> None:
    """A customer whose words have not changed is told again ``every_s`` after
    their last update, whoever else is told meanwhile; one told since (because
    their place moved) is reminded from that later update, not the first."""
    for n, name in enumerate("abc", start=1):
        await backend.enqueue(call(name, None, at=n), n)
    held = NodePositions()
    held.hold({"cust-a", "cust-b", "cust-c"})
    assert sorted(held.to_look_up()) == ["cust-a", "cust-b", "cust-c"]
    held.looked_up(["cust-a", "cust-b", "cust-c"], {"cust-a", "cust-b", "cust-c"})
    assert held.to_look_up() == []
    held.apply(await backend.queue_changes(0))
    _, standings = await backend.standings(["a", "b", "c"])
    held.put(standings)
    held.set_figures(await backend.staffing(), AHT)

    def told(now: float) -> list[tuple[str, bool]]:
        return sorted((d.estimate.call_id, d.reminder) for d in held.due(now, 0.25, 10))

    assert told(100) == [("a", False), ("b", False), ("c", False)]
    assert told(105) == []
    await backend.remove("a", 106)  # b and c move up: told now, so reminded from now
    held.apply(await backend.queue_changes(held.version))
    assert told(106) == [("b", False), ("c", False)]
    assert told(109.9) == []
    assert told(110) == []  # a left; b and c were told at 106
    assert told(116) == [("b", True), ("c", True)]
    assert told(117) == []
    assert told(126) == [("b", True), ("c", True)]
    # A customer who arrives later is looked up, and only they are.
    held.hold({"cust-b", "cust-c", "cust-d"})
    assert held.to_look_up() == ["cust-d"]


async def test_the_hooks_fields_of_a_greeting_serve_until_the_figure_changes(
    backend: QueueBackend,
) -> None:
    """The callback option the hello added is kept with what the customer was told:
    the dispatcher's next reminder repeats it instead of asking the hooks again, and
    asks again for another wait figure, for fields older than it accepts, and for a
    call whose customer left."""
    await backend.enqueue(call("a", None, at=1), 1)
    staffing = await backend.staffing()
    _, (standing,) = await backend.standings(["a"])
    told = standing_estimate(standing, staffing, AHT)
    held = NodePositions()
    held.greeted("cust-a", "a", told, at=5, fields={"callback_available": True})
    assert held.fields_for("a", told.seconds) == {"callback_available": True}
    assert held.fields_for("a", told.seconds, since=5) == {"callback_available": True}
    assert held.fields_for("a", told.seconds, since=6) is None  # too old for the caller
    assert held.fields_for("a", (told.seconds or 0) + 60) is None  # another figure
    held.annotated("a", told.seconds, {"callback_available": False}, at=20)
    assert held.fields_for("a", told.seconds, since=6) == {"callback_available": False}
    held.hold({"cust-a"})
    held.put([standing])
    held.hold(set())  # the customer's socket left
    assert held.fields_for("a", told.seconds) is None
