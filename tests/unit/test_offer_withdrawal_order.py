"""A desk never keeps the card of an offer that was withdrawn.

A cancel can commit right after an offer does, before the dispatcher's task
resumes to tell the desk (PostgreSQL answers the two connections in either
order; on another node the withdrawal can simply arrive first). The desk must
then end with no card: either it got the offer and then its withdrawal, or the
offer was not delivered at all. A late ``call.offered`` alone would show a card
nobody can accept until its lease ran out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.auth.principal import Principal, Role
from server.calls import repository as repo
from server.calls.state import CallAction, CallState, EndReason
from server.db.models import Call
from server.hub.connection import ClientConnection
from server.hub.hub import Hub
from server.routing.model import DesiredPresence
from tests.unit.fakes import Branch, branch


class _OpenSocket:
    closed = False


class _Desk:
    """A socket that keeps what was queued for it, in order (its writer is never
    started: the test reads the queue)."""

    def __init__(self, hub: Hub, role: Role, subject: str, queue_size: int = 256) -> None:
        socket = _OpenSocket()
        principal = Principal(role, subject)
        self.connection = ClientConnection(socket, principal, queue_size)  # type: ignore[arg-type]
        hub.add(self.connection)

    def kinds(self) -> list[str]:
        pending = self.connection._pending or []
        return [json.loads(text)["type"] for text in pending]


def _real_hub(b: Branch) -> _Desk:
    """Put a real hub in place of the notifier, with the desk's and the
    customer's sockets on it."""
    hub = Hub()
    b.calls.hub = hub  # the dispatcher's service is b.calls
    _Desk(hub, Role.CUSTOMER, "C1003")
    return _Desk(hub, Role.SPECIALIST, "S06")


async def _cancel_commits_right_after_the_offer(b: Branch, monkeypatch: pytest.MonkeyPatch) -> str:
    """Offer C1003's call to S06; the customer's cancel commits (and tells the
    desk) inside the offer's commit, after SQL has it and before the
    dispatcher's task resumes."""
    call_id = await b.customer_calls("C1003")
    await b.calls.desk_connected("S06", "conn-S06")
    await b.calls.set_presence(Principal(Role.SPECIALIST, "S06"), DesiredPresence.AVAILABLE)
    real_stepped_call = repo.stepped_call

    async def stepped_call(
        session: Any, cid: str, action: CallAction, **fields: Any
    ) -> Call | None:
        call = await real_stepped_call(session, cid, action, **fields)
        if action is CallAction.OFFER and call is not None:
            real_commit = session.commit

            async def commit() -> None:
                await real_commit()
                await b.calls.leave_queue(cid, EndReason.CANCELLED, b.clock())

            session.commit = commit
        return call

    monkeypatch.setattr(repo, "stepped_call", stepped_call)
    await b.tick()
    return call_id


async def test_a_cancel_that_commits_after_the_offer_leaves_the_desk_no_card(
    unit_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with branch(unit_database) as b:
        desk = _real_hub(b)
        call_id = await _cancel_commits_right_after_the_offer(b, monkeypatch)
        assert (await b.call(call_id)).state == CallState.ENDED.value
        kinds = [k for k in desk.kinds() if k.startswith("call.")]
        # The cancel withdrew the offer before the offer's task could send it:
        # the late offer is not delivered (and the withdrawal alone shows nothing).
        assert kinds == ["call.offer_withdrawn"], kinds


def test_an_offer_after_its_withdrawal_is_not_delivered_and_others_are() -> None:
    hub = Hub()
    desk = _Desk(hub, Role.SPECIALIST, "S06")
    withdrawn = {"type": "call.offer_withdrawn", "call_id": "c1", "offer_id": "o1"}
    assert hub.send_local(Role.SPECIALIST, "S06", withdrawn) == 1
    late = {"type": "call.offered", "call_id": "c1", "offer_id": "o1"}
    assert hub.send_local(Role.SPECIALIST, "S06", late) == 0
    fresh = {"type": "call.offered", "call_id": "c1", "offer_id": "o2"}
    assert hub.send_local(Role.SPECIALIST, "S06", fresh) == 1
    assert desk.kinds() == ["call.offer_withdrawn", "call.offered"]


def test_a_replayed_offer_already_withdrawn_is_not_current() -> None:
    """What a reconnecting desk is replayed is checked the same way."""
    hub = Hub()
    offered = {"type": "call.offered", "call_id": "c1", "offer_id": "o1"}
    assert hub.is_current(offered)
    hub.send_local(
        Role.SPECIALIST, "S06", {"type": "call.offer_withdrawn", "call_id": "c1", "offer_id": "o1"}
    )
    assert not hub.is_current(offered)
    assert hub.is_current({"type": "queue.update", "position": 1})


def test_the_hubs_memory_of_withdrawn_offers_is_bounded() -> None:
    import server.hub.hub as hub_module

    hub = Hub()
    kept = hub_module._WITHDRAWN_OFFERS_KEPT
    _Desk(hub, Role.SPECIALIST, "S06", queue_size=2 * kept)
    for n in range(kept + 10):
        hub.send_local(
            Role.SPECIALIST,
            "S06",
            {"type": "call.offer_withdrawn", "call_id": "c", "offer_id": f"o{n}"},
        )
    assert len(hub._withdrawn_offers) == kept
    # The oldest were forgotten, the newest are remembered.
    assert hub.send_local(Role.SPECIALIST, "S06", {"type": "call.offered", "offer_id": "o0"}) == 1
    newest = {"type": "call.offered", "offer_id": f"o{kept + 9}"}
    assert hub.send_local(Role.SPECIALIST, "S06", newest) == 0


def test_the_hub_knows_the_offer_messages_by_the_names_the_services_send() -> None:
    """The hub cannot import the call messages (they import it): the names it
    watches for are checked against them here."""
    import server.hub.hub as hub_module
    from server.calls.messages import call_offered, offer_withdrawn

    call = Call(call_id="c", intent="other", dialect=None, priority="normal", context={})
    assert call_offered(call, None, "o", 1.0)["type"] == hub_module._OFFERED
    assert offer_withdrawn("c", "o")["type"] == hub_module._OFFER_WITHDRAWN
