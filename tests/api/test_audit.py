"""The audit chain verifies, and names the entry a tamperer touched (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import text

from server.db.engine import make_engine
from tests.api.harness import Api, RunningServer


async def _run_a_call(api: Api) -> None:
    desk, desk_ws = await api.available_specialist("zhou.min")
    customer = await api.customer("C1002")
    call_id = (await customer.post("/api/v1/calls", {})).body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=call_id)
    await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    await desk.post(f"/api/v1/calls/{call_id}/end")
    await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "done"})


async def test_audit_chain_verifies_and_detects_tampering(api: Api, server: RunningServer) -> None:
    await _run_a_call(api)
    supervisor = await api.supervisor()
    verified = await supervisor.get("/api/v1/audit/verify")
    assert verified.status == 200
    assert verified.body["ok"] is True
    # a login and five call steps at least
    assert verified.body["entries"] >= 6

    engine = make_engine(server.settings.database_url)
    try:
        async with engine.begin() as conn:
            kinds = [
                row[0]
                for row in await conn.execute(text("SELECT kind FROM audit_log ORDER BY seq"))
            ]
            assert "auth.login" in kinds and "call.accepted" in kinds
            # Someone edits who accepted the call.
            await conn.execute(
                text("UPDATE audit_log SET actor_id = 'S99' WHERE kind = 'call.accepted'")
            )
            seq = (
                await conn.execute(text("SELECT seq FROM audit_log WHERE kind = 'call.accepted'"))
            ).scalar_one()
        broken = await supervisor.get("/api/v1/audit/verify")
        assert broken.body["ok"] is False
        assert broken.body["first_bad_seq"] == seq
        assert "altered" in broken.body["problem"]

        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE audit_log SET actor_id = 'S03' WHERE kind = 'call.accepted'")
            )
        assert (await supervisor.get("/api/v1/audit/verify")).body["ok"] is True

        # Removing an entry is detected too, at the gap.
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
        gap = await supervisor.get("/api/v1/audit/verify")
        assert gap.body["ok"] is False and gap.body["first_bad_seq"] == 3
    finally:
        await engine.dispose()


async def test_audit_verify_is_for_supervisors(api: Api) -> None:
    customer = await api.customer("C1001")
    assert (await customer.get("/api/v1/audit/verify")).status == 403
