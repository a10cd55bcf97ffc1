"""Video integrity through a real server: the endpoint, the desk's notices, the audit
trail and recording markers, liveness before a sensitive operation, the risk input.

Real server on loopback, real aiortc clients whose customer camera is a
:class:`~tests.integrity.sources.SyntheticCamera`, media through the embedded
media node, the analysis in its real worker process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

import risk
from server.appkeys import COMPONENTS, INTEGRITY, OPERATIONS
from server.db.banking import AuditEntry
from tests.api.harness import Api, RunningServer
from tests.e2e.media_client import MediaClient
from tests.integrity.sources import SyntheticCamera, follow
from tests.media.peer import MovingPatternTrack
from tests.plugin.waiting import until

pytestmark = [pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(300)]

TIMEOUT_S = 60.0


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = TIMEOUT_S) -> Any:
    return await until(check, timeout)


async def _call(
    api: Api, camera: SyntheticCamera, username: str = "chen.li"
) -> tuple[MediaClient, MediaClient, str]:
    desk_party = await api.specialist(username)
    # The desk's own video is not analysed: a small, slow picture keeps the machine free.
    desk = MediaClient(desk_party, video=lambda: MovingPatternTrack(160, 120, 5))
    await desk.connect()
    assert (await desk_party.put("/api/v1/desk/presence", {"state": "available"})).status == 200
    customer = MediaClient(await api.customer("C1001"), video=lambda: camera)
    await customer.connect()
    call_id = (await customer.party.post("/api/v1/calls", {})).body["call_id"]
    offer = await desk.expect("call.offered", call_id=call_id, timeout=30)
    accepted = await desk_party.post(
        f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]}
    )
    assert accepted.status == 200, accepted

    async def active() -> bool:
        view = await customer.party.get(f"/api/v1/calls/{call_id}")
        return bool(view.body["state"] == "active")

    await _until(active)
    return desk, customer, call_id


async def _status(desk: MediaClient, call_id: str, wanted: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        reply = await desk.party.get(f"/api/v1/calls/{call_id}/integrity")
        assert reply.status == 200, reply
        return reply.body if reply.body["status"] == wanted else None

    found: dict[str, Any] = await _until(check)
    return found


async def test_endpoint_notices_audit_and_markers(api: Api, server: RunningServer) -> None:
    camera = SyntheticCamera(faces=1)
    desk, customer, call_id = await _call(api, camera)
    try:
        body = await _status(desk, call_id, "ok")
        assert body["call_id"] == call_id and body["signals"] == []
        # Who may ask: the specialist holding the call and supervisors; a customer is
        # refused (403), another specialist and an unknown call are not found (404).
        supervisor = await api.supervisor()
        assert (await supervisor.get(f"/api/v1/calls/{call_id}/integrity")).status == 200
        other = await api.specialist("wang.fang")
        assert (await other.get(f"/api/v1/calls/{call_id}/integrity")).status == 404
        refused = await customer.party.get(f"/api/v1/calls/{call_id}/integrity")
        assert refused.status == 403 and refused.body["code"]
        missing = await supervisor.get("/api/v1/calls/no-such-call/integrity")
        assert missing.status == 404 and missing.body["code"] == "call_not_found"

        camera.set_mode("frozen")
        notice = await desk.expect("video.integrity", timeout=TIMEOUT_S, status="suspect")
        assert notice["call_id"] == call_id
        assert "video_frozen" in {s["code"] for s in notice["signals"]}
        frozen = next(s for s in notice["signals"] if s["code"] == "video_frozen")
        assert frozen["since"].endswith("Z") and "until" not in frozen and frozen["detail"]
        body = await _status(desk, call_id, "suspect")
        assert "video_frozen" in {s["code"] for s in body["signals"]}

        # The risk engine's input for an operation now.
        service = server.app[INTEGRITY]
        given = service.risk_input(call_id)
        assert given is not None and given.status == "suspect"
        assert "video_frozen" in given.signals

        camera.set_mode("live")
        back = await desk.expect("video.integrity", timeout=TIMEOUT_S, status="ok")
        ended = next(s for s in back["signals"] if s["code"] == "video_frozen")
        assert "until" in ended

        sessions = server.app[COMPONENTS].sessions

        async def audited() -> list[dict[str, Any]]:
            async with sessions() as session:
                rows = (
                    await session.execute(
                        select(AuditEntry).where(AuditEntry.kind == "integrity.changed")
                    )
                ).scalars()
                return [r.data for r in rows if r.data.get("call_id") == call_id]

        entries = await _until(audited)
        assert {"suspect", "ok"} <= {e["status"] for e in await _until(audited)}, entries
        assert (await supervisor.get("/api/v1/audit/verify")).body["ok"] is True

        async def markers() -> list[str]:
            reply = await supervisor.get(f"/api/v1/calls/{call_id}/recording")
            kinds = [m["kind"] for m in reply.body["markers"]]
            return kinds if "integrity_suspect" in kinds and "integrity_ok" in kinds else []

        assert await _until(markers)
    finally:
        await desk.close()
        await customer.close()


async def test_a_password_reset_asks_for_liveness_bound_to_it(
    api: Api, server: RunningServer
) -> None:
    camera = SyntheticCamera(faces=1, seed=5)
    desk, customer, call_id = await _call(api, camera)
    try:
        await _status(desk, call_id, "ok")
        reset = await desk.party.post(
            f"/api/v1/calls/{call_id}/operations", {"kind": "password_reset", "params": {}}
        )
        assert reset.status == 201, reset
        operation_id = reset.body["operation_id"]
        challenge = await customer.expect("liveness.challenge", timeout=TIMEOUT_S, call_id=call_id)
        assert challenge["kind"] in ("colour", "head_turn") and challenge["steps"]
        assert challenge["message"]["zh"] and challenge["message"]["en"]
        await follow(camera, challenge)
        result = await desk.expect(
            "liveness.result", timeout=TIMEOUT_S, challenge_id=challenge["challenge_id"]
        )
        state = server.app[INTEGRITY].state(call_id)
        assert result["passed"] is True, (
            f"{result['reason']}; steps {challenge['steps']}; samples {_recent(state)}"
        )
        assert result["operation_id"] == operation_id and result["reason"] == "followed"
        assert server.app[INTEGRITY].view(call_id)["liveness"] == "passed"
    finally:
        await desk.close()
        await customer.close()


async def test_a_transfer_after_a_failed_challenge(api: Api, server: RunningServer) -> None:
    """The risk engine is told the liveness failed. The decision itself (at least
    review, reason ``liveness_failed``) is the risk rules' work: asserted once the
    default ruleset has a rule for it."""
    camera = SyntheticCamera(faces=1, seed=6)
    desk, customer, call_id = await _call(api, camera)
    service = server.app[INTEGRITY]
    operations = server.app[OPERATIONS]
    seen: list[risk.CallSession] = []
    evaluate = operations.engine.evaluate

    def spy(operation: Any, profile: Any, session: risk.CallSession, *args: Any, **kw: Any) -> Any:
        seen.append(session)
        return evaluate(operation, profile, session, *args, **kw)

    operations.engine.evaluate = spy  # type: ignore[method-assign]
    try:
        await _status(desk, call_id, "ok")
        await asyncio.sleep(7.0)  # history for the replay
        camera.set_mode("replay")  # earlier frames, whatever the screen asks
        challenge_id = service.challenge(call_id, why="test")
        assert challenge_id is not None
        challenge = await customer.expect("liveness.challenge", timeout=TIMEOUT_S)
        assert challenge["challenge_id"] == challenge_id
        result = await desk.expect("liveness.result", timeout=TIMEOUT_S, challenge_id=challenge_id)
        assert result["passed"] is False and result["reason"] != "followed", result
        # The desk was told (the notice goes out just before the result).
        notices = [m for m in desk.seen if m["type"] == "video.integrity"]
        assert notices and notices[-1]["status"] == "suspect", notices
        assert "liveness_failed" in {s["code"] for s in notices[-1]["signals"]}
        body = await _status(desk, call_id, "suspect")
        assert body["liveness"] == "failed"

        transfer = await desk.party.post(
            f"/api/v1/calls/{call_id}/operations",
            {
                "kind": "transfer",
                "params": {
                    "amount": "800.00",
                    "currency": "CNY",
                    "payee_account": "6222020000001234",
                    "payee_name": "王强",
                    "payee_bank": "ICBC",
                },
            },
        )
        assert transfer.status == 201, transfer
        given = seen[-1].video_integrity
        assert given is not None and given.liveness == "failed" and given.status == "suspect"
        if _rules_know("liveness_failed"):
            decision = transfer.body["risk"]["decision"]
            assert decision in ("review", "hold", "block"), transfer.body
            assert "liveness_failed" in {r["code"] for r in transfer.body["risk"]["reasons"]}
    finally:
        operations.engine.evaluate = evaluate  # type: ignore[method-assign]
        await desk.close()
        await customer.close()


def _recent(state: Any) -> list[Any]:
    """The last samples, for a failure message: (seconds ago, faces, mean colour)."""
    now = time.time()
    samples = list(state.samples)[-40:] if state is not None else []
    return [(round(x.at - now, 1), len(x.faces), x.colour) for x in samples]


def _rules_know(code: str) -> bool:
    """Whether the default ruleset has a rule with this reason code (the risk rules'
    branch adds them; before that only the input side can be asserted)."""
    return any(rule.code == code for rule in risk.load_default_ruleset().rules)


class TestDirectMode:
    @pytest.fixture
    def server_settings(self) -> dict[str, Any]:
        return {"media_mode": "direct"}

    async def test_direct_media_is_unknown(self, api: Api, server: RunningServer) -> None:
        desk_party = await api.specialist("chen.li")
        desk = MediaClient(desk_party)
        await desk.connect()
        assert (await desk_party.put("/api/v1/desk/presence", {"state": "available"})).status == 200
        customer = MediaClient(await api.customer("C1001"))
        await customer.connect()
        try:
            call_id = (await customer.party.post("/api/v1/calls", {})).body["call_id"]
            offer = await desk.expect("call.offered", call_id=call_id, timeout=30)
            await desk_party.post(
                f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]}
            )
            await desk.frames(5)
            reply = await desk_party.get(f"/api/v1/calls/{call_id}/integrity")
            assert reply.status == 200 and reply.body["status"] == "unknown", reply
            assert server.app[INTEGRITY].risk_input(call_id) is None
        finally:
            await desk.close()
            await customer.close()
