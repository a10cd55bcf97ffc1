"""Routing by need through the public API: the call's intent, its validation, the
redirect kinds that imply one, and who gets the offer.

Seeded specialists (``server/seed.py``): wang.fang (wuu 4; password, card),
zhou.min (wuu 5; transfer, passbook, loss_report), chen.li (wuu 5; transfer,
deposit), zhang.jun (cmn only; transfer, limit). C1001 and C1002 prefer wuu.
Waits are on events; "nothing happens" is checked over whole dispatcher passes
(``expect_silence``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from server.routing.intents import INTENT_SKILLS, INTENTS
from tests.api.harness import Api, RunningServer
from tests.api.helpers import BOTH_DATABASES, assert_problem, expect_silence, seeded_database
from tests.api.test_redirects import SECRET, password_locked, redirect, transfer_over_limit

both_databases = pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with seeded_database(request, getattr(request, "param", "sqlite"), tmp_path) as url:
        yield url


@pytest.fixture
def server_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    base: dict[str, Any] = {
        "redirect_secret": SECRET,
        "offer_lease_s": 5.0,
        "queue_update_interval_s": 30.0,
    }
    overrides = dict(getattr(request, "param", {}))
    if overrides.pop("queue", None) == "redis":
        # The Redis queue backend (the test's Redis, flushed first; fails, never
        # skips, when no Redis is configured).
        request.getfixturevalue("redis_client")
        base["redis_url"] = request.getfixturevalue("redis_url")
    return {**base, **overrides}


both_queues = pytest.mark.parametrize(
    "server_settings",
    [{}, pytest.param({"queue": "redis"}, marks=pytest.mark.redis)],
    indirect=True,
    ids=["memory-queue", "redis-queue"],
)


async def offered_steps(api: Api, call_id: str) -> list[tuple[str, str]]:
    supervisor = await api.supervisor()
    reply = await supervisor.get(f"/api/v1/calls/{call_id}/timeline")
    assert reply.status == 200, reply
    return [
        (e["actor_id"], e["data"]["step"]) for e in reply.body["events"] if e["kind"] == "offered"
    ]


# --------------------------------------------------------------------------- the intent


@both_databases
async def test_every_listed_intent_is_stored_and_shown_to_customer_and_supervisor(
    api: Api,
) -> None:
    supervisor = await api.supervisor()
    for index, intent in enumerate(INTENTS):
        customer = await api.customer(f"C10{index + 10}")
        created = await customer.post("/api/v1/calls", {"intent": intent})
        assert created.status == 201, (intent, created)
        assert created.body["intent"] == intent
        seen = await customer.get(f"/api/v1/calls/{created.body['call_id']}")
        assert seen.body["intent"] == intent
        watched = await supervisor.get(f"/api/v1/calls/{created.body['call_id']}")
        assert watched.body["intent"] == intent


@both_databases
async def test_an_unknown_intent_is_422_unknown_intent_and_queues_nothing(api: Api) -> None:
    customer = await api.customer("C1003")
    for bad in ("balance", "Transfer", "请回电 13801001003", ""):
        reply = await customer.post("/api/v1/calls", {"intent": bad})
        body = assert_problem(reply, 422, "unknown_intent", bad)
        assert all(intent in body["detail"] for intent in INTENTS)
        # The refused text is not echoed: a customer's free text may be personal.
        assert "13801001003" not in body["detail"]
    for bad_type in (42, ["transfer"], {"kind": "transfer"}):
        assert_problem(await customer.post("/api/v1/calls", {"intent": bad_type}), 422)
    # Nothing was queued: the customer's next valid tap opens a new call.
    created = await customer.post("/api/v1/calls", {"intent": "other"})
    assert created.status == 201, created


async def test_the_offer_shows_the_desk_the_intent(api: Api) -> None:
    _desk, desk_ws = await api.available_specialist("zhou.min")
    customer = await api.customer("C1001")
    created = await customer.post("/api/v1/calls", {"intent": "loss_report"})
    offer = await desk_ws.expect("call.offered", call_id=created.body["call_id"])
    assert offer["context"]["intent"] == "loss_report"


# --------------------------------------------------------------------------- who gets it


@both_queues
async def test_a_speaker_with_the_skill_beats_a_speaker_idle_longer(
    api: Api, server: RunningServer
) -> None:
    _plain, plain_ws = await api.available_specialist("wang.fang")  # wuu, no transfer
    _skilled, skilled_ws = await api.available_specialist("zhou.min")  # wuu and transfer
    customer = await api.customer("C1001")
    created = await customer.post("/api/v1/calls", {"intent": "transfer"})
    call_id = created.body["call_id"]
    await skilled_ws.expect("call.offered", call_id=call_id)
    await expect_silence(plain_ws, "call.offered", server)
    assert await offered_steps(api, call_id) == [("S03", "skill")]


async def test_other_has_no_skill_preference(api: Api, server: RunningServer) -> None:
    _plain, plain_ws = await api.available_specialist("wang.fang")  # idle the longest
    _skilled, skilled_ws = await api.available_specialist("zhou.min")
    customer = await api.customer("C1001")
    created = await customer.post("/api/v1/calls", {"intent": "other"})
    await plain_ws.expect("call.offered", call_id=created.body["call_id"])
    await expect_silence(skilled_ws, "call.offered", server)
    assert await offered_steps(api, created.body["call_id"]) == [("S02", "dialect")]


@pytest.mark.parametrize(
    "server_settings",
    [
        {"skill_wait_s": 0.5, "dialect_wait_s": 30.0},
        pytest.param(
            {"skill_wait_s": 0.5, "dialect_wait_s": 30.0, "queue": "redis"},
            marks=pytest.mark.redis,
        ),
    ],
    indirect=True,
    ids=["memory-queue", "redis-queue"],
)
async def test_after_the_skill_wait_a_speaker_without_the_skill_takes_it(api: Api) -> None:
    skilled = await api.specialist("chen.li")  # wuu and transfer, logged in but away
    await skilled.connect()
    _plain, plain_ws = await api.available_specialist("wang.fang")
    customer = await api.customer("C1001")
    created = await customer.post("/api/v1/calls", {"intent": "transfer"})
    call_id = created.body["call_id"]
    await plain_ws.expect("call.offered", call_id=call_id)
    supervisor = await api.supervisor()
    events = (await supervisor.get(f"/api/v1/calls/{call_id}/timeline")).body["events"]
    queued = events[0]
    offered = next(e for e in events if e["kind"] == "offered")
    assert (offered["actor_id"], offered["data"]["step"]) == ("S02", "dialect")
    # Not before the skill step had its time (server timestamps, a lower bound only).
    waited = datetime.fromisoformat(offered["at"]) - datetime.fromisoformat(queued["at"])
    assert waited.total_seconds() >= 0.45


# --------------------------------------------------------------------------- redirects


@both_databases
@pytest.mark.parametrize(
    ("event", "intent", "username", "specialist_id"),
    [
        (password_locked(customer_id="C1002"), "password", "wang.fang", "S02"),
        (transfer_over_limit(customer_id="C1002"), "transfer", "zhou.min", "S03"),
    ],
    ids=["password_locked", "transfer_over_limit"],
)
async def test_a_redirect_kind_gives_the_call_its_intent_and_skill(
    api: Api,
    server: RunningServer,
    event: dict[str, Any],
    intent: str,
    username: str,
    specialist_id: str,
) -> None:
    # Both desks speak wuu; only one has the skill the redirect implies, and the
    # other has been idle longer.
    other = "zhou.min" if username == "wang.fang" else "wang.fang"
    _other, other_ws = await api.available_specialist(other)
    _desk, desk_ws = await api.available_specialist(username)
    issued = await redirect(api, event)
    assert issued.status == 201, issued
    customer = await api.customer("C1002")
    created = await customer.post("/api/v1/calls", {"ticket": issued.body["ticket"]})
    assert created.status == 201, created
    assert created.body["intent"] == intent
    offer = await desk_ws.expect("call.offered", call_id=created.body["call_id"])
    assert offer["context"]["intent"] == intent
    await expect_silence(other_ws, "call.offered", server)
    assert await offered_steps(api, created.body["call_id"]) == [(specialist_id, "skill")]


async def test_the_customers_own_intent_wins_over_the_redirects(api: Api) -> None:
    issued = await redirect(api, password_locked(customer_id="C1002"))
    customer = await api.customer("C1002")
    created = await customer.post(
        "/api/v1/calls", {"ticket": issued.body["ticket"], "intent": "deposit"}
    )
    assert created.status == 201, created
    assert created.body["intent"] == "deposit"


# --------------------------------------------------------------------------- the demo roster


def test_the_seeded_specialists_cover_every_intent_in_every_dialect() -> None:
    from server.routing.intents import covered_intents
    from server.routing.model import RoutingPolicy, SpecialistProfile
    from server.seed import CUSTOMERS, SPECIALISTS

    policy = RoutingPolicy()
    dialects = {dialect for _id, _name, _age, dialect, _phone in CUSTOMERS}
    needing = {intent for intent, skills in INTENT_SKILLS.items() if skills}
    assert needing == set(INTENTS) - {"other"}
    for dialect in sorted(dialects):
        covered: set[str] = set()
        for spec in SPECIALISTS:
            profile = SpecialistProfile(spec.specialist_id, spec.dialects, frozenset(spec.skills))
            if profile.speaks(dialect, policy):
                covered |= covered_intents(spec.skills)
        assert needing <= covered, (dialect, needing - covered)
