"""An operation that asks for a liveness check waits for it and is decided with its result.

Real server on loopback (SQLite), real aiortc clients, media through the embedded
media node, the analysis in its real worker process; the customer's camera is a
:class:`~tests.integrity.sources.SyntheticCamera` that either follows the
challenge on its screen (as the app and a live customer do) or replays its own
earlier frames (as an injected recording would). Nothing is stubbed: the verdict
comes from the server's own verification of the video it received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from server.appkeys import COMPONENTS, INTEGRITY
from server.db.banking import AuditEntry, Payee
from tests.api.harness import Api, RunningServer
from tests.e2e.media_client import MediaClient
from tests.integrity.sources import SyntheticCamera, follow
from tests.media.peer import MovingPatternTrack
from tests.plugin.waiting import until

pytestmark = [pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(300)]

TIMEOUT_S = 60.0


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = TIMEOUT_S) -> Any:
    return await until(check, timeout)


def _seen(client: MediaClient, kind: str, **match: Any) -> list[dict[str, Any]]:
    """Every message of ``kind`` the client received so far (without consuming any)."""
    return [
        m
        for m in client.seen
        if m.get("type") == kind and all(m.get(k) == v for k, v in match.items())
    ]


async def _updated(desk: MediaClient, operation_id: str, state: str) -> dict[str, Any]:
    """The desk's ``operation.updated`` that shows the operation in ``state``."""

    async def check() -> dict[str, Any] | None:
        for message in _seen(desk, "operation.updated"):
            operation = message["operation"]
            if operation["operation_id"] == operation_id and operation["state"] == state:
                return dict(operation)
        return None

    found: dict[str, Any] = await _until(check)
    return found


async def _decided(desk: MediaClient, operation_id: str) -> dict[str, Any]:
    """The desk's first ``operation.updated`` after the operation stopped waiting."""

    async def check() -> dict[str, Any] | None:
        for message in _seen(desk, "operation.updated"):
            operation = message["operation"]
            if (
                operation["operation_id"] == operation_id
                and operation["state"] != "awaiting_liveness"
            ):
                return dict(operation)
        return None

    found: dict[str, Any] = await _until(check, timeout=TIMEOUT_S + 30)
    return found


async def _call(
    api: Api, camera: SyntheticCamera, customer_id: str = "C1001"
) -> tuple[MediaClient, MediaClient, str]:
    desk_party = await api.specialist("chen.li")
    desk = MediaClient(desk_party, video=lambda: MovingPatternTrack(160, 120, 5))
    await desk.connect()
    assert (await desk_party.put("/api/v1/desk/presence", {"state": "available"})).status == 200
    customer = MediaClient(await api.customer(customer_id), video=lambda: camera)
    await customer.connect()
    call_id = (await customer.party.post("/api/v1/calls", {})).body["call_id"]
    offer = await desk.expect("call.offered", call_id=call_id, timeout=30)
    accepted = await desk_party.post(
        f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]}
    )
    assert accepted.status == 200, accepted

    async def analysed_ok() -> bool:
        reply = await desk_party.get(f"/api/v1/calls/{call_id}/integrity")
        return bool(reply.status == 200 and reply.body["status"] == "ok")

    async def active() -> bool:
        # The video can be analysed before both parties' media.state has made the
        # call active (on a busy machine): operations need the active call.
        reply = await desk_party.get(f"/api/v1/calls/{call_id}")
        return bool(reply.status == 200 and reply.body["state"] == "active")

    await _until(analysed_ok)
    await _until(active)
    return desk, customer, call_id


async def _start(desk: MediaClient, call_id: str, kind: str, params: dict[str, Any]) -> str:
    started = await desk.party.post(
        f"/api/v1/calls/{call_id}/operations", {"kind": kind, "params": params}
    )
    assert started.status == 201, started
    assert started.body["state"] == "awaiting_liveness", started.body
    binding = started.body["risk"]["liveness"]
    assert binding["status"] == "pending" and binding["challenge_id"], binding
    operation_id: str = started.body["operation_id"]
    return operation_id


async def _nothing_goes_through_while_waiting(
    desk: MediaClient, customer: MediaClient, operation_id: str
) -> None:
    confirm = await customer.party.post(
        f"/api/v1/operations/{operation_id}/confirm", {"confirmed": True}
    )
    assert confirm.status == 409 and confirm.body["code"] == "liveness_pending", confirm
    review = await desk.party.post(
        f"/api/v1/operations/{operation_id}/review", {"action": "proceed", "answers": {}}
    )
    assert review.status == 409 and review.body["code"] == "liveness_pending", review
    view = await desk.party.get(f"/api/v1/operations/{operation_id}")
    assert view.body["state"] == "awaiting_liveness" and view.body["result"] is None
    # The customer is asked for the challenge only, not yet for a yes.
    assert not _seen(customer, "operation.confirm_request", operation_id=operation_id)


async def test_a_followed_challenge_lets_the_operation_proceed_as_decided(
    api: Api, server: RunningServer
) -> None:
    camera = SyntheticCamera(faces=1, seed=11)
    desk, customer, call_id = await _call(api, camera)
    try:
        operation_id = await _start(desk, call_id, "password_reset", {})
        await _updated(desk, operation_id, "awaiting_liveness")
        challenge = await customer.expect("liveness.challenge", timeout=TIMEOUT_S, call_id=call_id)
        following = asyncio.create_task(follow(camera, challenge))  # at once, as the app does
        await _nothing_goes_through_while_waiting(desk, customer, operation_id)
        await following

        decided = await _decided(desk, operation_id)
        result = await desk.expect(
            "liveness.result", timeout=TIMEOUT_S, challenge_id=challenge["challenge_id"]
        )
        assert result["passed"] is True and result["operation_id"] == operation_id, result
        liveness = decided["risk"]["liveness"]
        assert liveness["status"] == "passed" and liveness["reason"] == "followed", liveness
        assert liveness["challenge_id"] == challenge["challenge_id"]
        codes = {r["code"] for r in decided["risk"]["reasons"]}
        assert not any(code.startswith("liveness") for code in codes), codes
        # As the engine decided it: a password reset with a live customer is not held up.
        assert decided["risk"]["decision"] in ("allow", "warn"), decided["risk"]
        assert decided["state"] == "awaiting_confirmation", decided
        await customer.expect("operation.confirm_request", timeout=30, operation_id=operation_id)
        confirmed = await customer.party.post(
            f"/api/v1/operations/{operation_id}/confirm", {"confirmed": True}
        )
        assert confirmed.status == 200 and confirmed.body["state"] == "executed", confirmed
        executed = await desk.party.get(f"/api/v1/operations/{operation_id}")
        assert executed.body["state"] == "executed" and executed.body["result"], executed.body

        # The decision with the result is in the audit chain, naming the challenge.
        sessions = server.app[COMPONENTS].sessions
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(AuditEntry.data).where(
                        AuditEntry.kind == "risk.decision", AuditEntry.subject_id == operation_id
                    )
                )
            ).all()
        decisions = [row[0] for row in rows]
        assert decisions[0]["waits_for_liveness"] == challenge["challenge_id"], decisions
        assert decisions[-1]["liveness"]["status"] == "passed", decisions
    finally:
        await desk.close()
        await customer.close()


async def test_a_failed_challenge_makes_a_large_transfer_a_hold_and_a_reset_a_review(
    api: Api, server: RunningServer
) -> None:
    camera = SyntheticCamera(faces=1, seed=12)
    desk, customer, call_id = await _call(api, camera, customer_id="C1002")
    try:
        await asyncio.sleep(7.0)  # history for the replay
        camera.set_mode("replay")  # earlier frames, whatever the screen asks

        # A large transfer to his own son, a payee he pays every month: held, as the
        # engine's rule for a large amount after a failed check says.
        transfer_id = await _start(desk, call_id, "transfer", await _son(server, "60000.00"))
        challenge = await customer.expect("liveness.challenge", timeout=TIMEOUT_S, call_id=call_id)
        following = asyncio.create_task(follow(camera, challenge))  # the replay shows none of it
        await _nothing_goes_through_while_waiting(desk, customer, transfer_id)
        await following
        transfer = await _decided(desk, transfer_id)
        assert transfer["risk"]["liveness"]["status"] == "failed", transfer["risk"]["liveness"]
        codes = {r["code"] for r in transfer["risk"]["reasons"]}
        assert {"liveness_failed", "liveness_failed_large_transfer"} <= codes, codes
        assert transfer["risk"]["decision"] in ("hold", "block"), transfer["risk"]
        assert transfer["state"] in ("held", "blocked"), transfer
        popup = await desk.expect("risk.popup", timeout=30, operation_id=transfer_id)
        assert "liveness_failed" in {r["code"] for r in popup["reasons"]}, popup
        # The customer is told in plain words, and not blamed.
        warning = await customer.expect("risk.warning", timeout=30, operation_id=transfer_id)
        assert "not your fault" in warning["text"]["en"], warning
        assert "不是您的错" in warning["text"]["zh"], warning
        confirm = await customer.party.post(
            f"/api/v1/operations/{transfer_id}/confirm", {"confirmed": True}
        )
        assert confirm.status == 409, confirm

        # A password reset: its rules have no liveness condition, the wait's floor applies.
        reset_id = await _start(desk, call_id, "password_reset", {})
        challenge = await customer.expect("liveness.challenge", timeout=TIMEOUT_S, call_id=call_id)
        await follow(camera, challenge)
        reset = await _decided(desk, reset_id)
        assert reset["risk"]["liveness"]["status"] == "failed", reset["risk"]["liveness"]
        assert reset["risk"]["decision"] in ("review", "hold", "block"), reset["risk"]
        assert reset["state"] in ("awaiting_review", "held", "blocked"), reset
        assert "liveness_failed" in {r["code"] for r in reset["risk"]["reasons"]}
        await customer.expect("risk.warning", timeout=30, operation_id=reset_id)
    finally:
        await desk.close()
        await customer.close()


async def _son(server: RunningServer, amount: str) -> dict[str, Any]:
    """A transfer's params to C1002's son, a family payee of long standing."""
    async with server.app[COMPONENTS].sessions() as session:
        son = (
            (
                await session.execute(
                    select(Payee).where(Payee.customer_id == "C1002", Payee.relation == "family")
                )
            )
            .scalars()
            .first()
        )
    assert son is not None
    return {
        "amount": amount,
        "currency": "CNY",
        "payee_account": son.account_no,
        "payee_name": son.name,
        "payee_bank": son.bank,
    }


class TestNoVerdict:
    """The verification is lost (the node's analysis stops before its verdict): the
    deadline passes and the operation is decided as not passed, never allowed."""

    @pytest.fixture
    def server_settings(self) -> dict[str, Any]:
        return {"liveness_result_grace_s": 1.0}

    async def test_a_deadline_without_a_verdict_is_not_a_pass(
        self, api: Api, server: RunningServer
    ) -> None:
        camera = SyntheticCamera(faces=1, seed=13)
        desk, customer, call_id = await _call(api, camera, customer_id="C1002")
        try:
            # C1002's own son, a payee he pays every month: only the check holds it up.
            params = await _son(server, "50000.00")
            operation_id = await _start(desk, call_id, "transfer", params)
            await customer.expect("liveness.challenge", timeout=TIMEOUT_S, call_id=call_id)
            # The analysis stops as it does when its node shuts down: no verdict comes.
            await server.app[INTEGRITY].stop()
            await _nothing_goes_through_while_waiting(desk, customer, operation_id)

            decided = await _decided(desk, operation_id)
            liveness = decided["risk"]["liveness"]
            assert liveness["status"] == "expired" and liveness["reason"] == "no_result", liveness
            assert decided["risk"]["decision"] in ("hold", "block"), decided["risk"]
            codes = {r["code"] for r in decided["risk"]["reasons"]}
            assert "liveness_failed" in codes, codes
            assert not _seen(desk, "liveness.result"), "no verdict was given"
            warning = await customer.expect("risk.warning", timeout=30, operation_id=operation_id)
            assert "not your fault" in warning["text"]["en"], warning
        finally:
            await desk.close()
            await customer.close()
