"""Compliance recording through the real server (SQLite and PostgreSQL), media through the
relay: the notice at media start, markers at their media time, fail-closed operations
while the recording is down (the call goes on), the supervisor API and its audit.

The relay itself is built elsewhere; here the call's tap is opened from the server's
MediaTapFactory as the media node does, and fed real VP8/Opus frames."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from server.app import create_app
from server.appkeys import RECORDINGS
from server.db.banking import AuditEntry
from tests.api.harness import TEST_SETTINGS, Api, RunningServer
from tests.api.helpers import assert_problem
from tests.api.test_operations import SCAM_TRANSFER, STATEMENT, active_call, pin_morning
from tests.plugin.waiting import until
from tests.recording.media import call_media
from tests.recording.support import RelaySettings


@pytest.fixture
def recording_dir(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
async def server(
    database_url: str, tmp_path: Path, recording_dir: Path
) -> AsyncIterator[RunningServer]:
    settings = RelaySettings(
        **{
            **TEST_SETTINGS,
            "database_url": database_url,
            "recording_dir": str(recording_dir),
            "recording_spool_dir": str(tmp_path / "spool"),
        }
    )
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield RunningServer(app, f"http://127.0.0.1:{port}", settings, runner)
    finally:
        await asyncio.wait_for(runner.cleanup(), 30)


async def test_notice_markers_api_and_audit(api: Api, server: RunningServer) -> None:
    pin_morning(server)
    desk, desk_ws, customer, customer_ws, call_id = await active_call(api)
    for ws in (desk_ws, customer_ws):
        seen = [m for m in ws.received if m["type"] == "media.notice"]
        notice = seen[0] if seen else await ws.expect("media.notice", call_id=call_id)
        types = [m["type"] for m in ws.received]
        assert types.index("media.notice") > types.index("media.start")
        assert notice["recording"] is True and notice["message"]["zh"] and notice["message"]["en"]

    recordings = server.app[RECORDINGS]
    started = time.time()
    tap = await recordings.open(call_id, started_at=started)
    for frame in call_media(3.0, 0.0):
        tap.write(replace(frame, arrival=frame.arrival + started))

    reset = await desk.post(
        f"/api/v1/calls/{call_id}/operations", {"kind": "password_reset", "params": {}}
    )
    assert reset.status == 201, reset
    confirmed = await customer.post(
        f"/api/v1/operations/{reset.body['operation_id']}/confirm", {"confirmed": True}
    )
    assert confirmed.body["state"] == "executed", confirmed
    scam = await desk.post(
        f"/api/v1/calls/{call_id}/operations",
        {"kind": "transfer", "params": SCAM_TRANSFER, "customer_statement": STATEMENT},
    )
    assert scam.status == 201 and scam.body["state"] == "blocked", scam
    assert (await desk.post(f"/api/v1/calls/{call_id}/end")).status == 200

    supervisor = await api.supervisor()

    async def closed() -> Any:
        reply = await supervisor.get(f"/api/v1/calls/{call_id}/recording")
        return reply.body if reply.body["state"] == "complete" else None

    view = await until(closed, 20.0, every_s=0.05)
    assert {(t["party"], t["kind"]) for t in view["tracks"]} == {
        (p, k) for p in ("customer", "specialist") for k in ("audio", "video")
    }
    kinds = [m["kind"] for m in view["markers"]]
    for expected in (
        "recording_notice",
        "operation_started",
        "customer_confirmed",
        "executed",
        "risk_decision",
        "warning_shown",
    ):
        assert expected in kinds, (expected, kinds)
    assert [m["at_s"] for m in view["markers"]] == sorted(m["at_s"] for m in view["markers"])
    warning = next(m for m in view["markers"] if m["kind"] == "warning_shown")
    assert warning["operation_id"] == scam.body["operation_id"] and warning["data"]["text"]["zh"]
    assert view["legal_hold"] is False and view["retain_until"]

    verified = await supervisor.get(f"/api/v1/calls/{call_id}/recording/verify")
    assert verified.status == 200 and verified.body["ok"] is True, verified
    assert verified.body["segments"] >= 4
    held = await supervisor.put(
        f"/api/v1/calls/{call_id}/recording/hold", {"hold": True, "reason": "complaint 2026-118"}
    )
    assert held.status == 200 and held.body["legal_hold"] is True
    assert (await supervisor.get(f"/api/v1/calls/{call_id}/recording")).body["legal_hold"]
    assert_problem(
        await supervisor.put(f"/api/v1/calls/{call_id}/recording/hold", {"hold": "maybe"}),
        422,
    )
    assert (await desk.get(f"/api/v1/calls/{call_id}/recording")).status == 403

    async with server.app[RECORDINGS].sessions() as session:
        counts = dict(
            (
                await session.execute(
                    select(AuditEntry.kind, func.count())
                    .where(AuditEntry.kind.like("recording.%"))
                    .group_by(AuditEntry.kind)
                )
            ).all()
        )
    assert counts["recording.accessed"] == 3  # two views and one verification
    assert counts["recording.hold_set"] == 1
    assert counts["recording.segment"] == verified.body["segments"]
    assert counts["recording.closed"] == 1 and counts["recording.notice_sent"] == 1
    audit = await supervisor.get("/api/v1/audit/verify")
    assert audit.body["ok"] is True


@pytest.fixture
def unwritable(recording_dir: Path) -> Path:
    recording_dir.write_text("a file where the recordings folder should be")
    return recording_dir


async def test_recording_down_refuses_transfer_and_the_call_goes_on(
    api: Api, server: RunningServer, unwritable: Path
) -> None:
    desk, _desk_ws, customer, _customer_ws, call_id = await active_call(api)
    await server.app[RECORDINGS].open(call_id, started_at=time.time())
    supervisor = await api.supervisor()

    async def degraded() -> bool:
        body = (await supervisor.get(f"/api/v1/calls/{call_id}/recording")).body
        return body["healthy"] is False and body["state"] == "recording"

    await until(degraded, 20.0, every_s=0.05)
    refused = await desk.post(
        f"/api/v1/calls/{call_id}/operations",
        {"kind": "transfer", "params": SCAM_TRANSFER, "customer_statement": STATEMENT},
    )
    assert_problem(refused, 409, "recording_unavailable")
    assert "not being recorded" in refused.body["detail"]
    for kind in ("limit_change", "password_reset"):
        params = {"channel": "mobile", "new_limit": "1000.00"} if kind == "limit_change" else {}
        assert_problem(
            await desk.post(
                f"/api/v1/calls/{call_id}/operations", {"kind": kind, "params": params}
            ),
            409,
            "recording_unavailable",
        )
    inquiry = await desk.post(
        f"/api/v1/calls/{call_id}/operations", {"kind": "balance_inquiry", "params": {}}
    )
    assert inquiry.status == 201 and inquiry.body["state"] == "executed", inquiry
    assert (await customer.get(f"/api/v1/calls/{call_id}")).body["state"] == "active"
    markers = (await supervisor.get(f"/api/v1/calls/{call_id}/recording")).body["markers"]
    assert "recording_degraded" in [m["kind"] for m in markers]


async def test_no_recording_is_no_recording(api: Api, server: RunningServer) -> None:
    supervisor = await api.supervisor()
    view = await supervisor.get("/api/v1/calls/nosuchcall/recording")
    assert view.status == 200 and view.body["state"] == "none" and view.body["tracks"] == []
    assert_problem(await supervisor.get("/api/v1/calls/nosuchcall/recording/verify"), 404)
    # No recording has been opened for the call: the rule fails closed.
    desk, _d, _c, _cw, call_id = await active_call(api)
    assert_problem(
        await desk.post(
            f"/api/v1/calls/{call_id}/operations",
            {"kind": "password_reset", "params": {}},
        ),
        409,
        "recording_unavailable",
    )
