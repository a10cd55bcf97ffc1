"""A waiting customer whose app has gone away has abandoned the call (both databases)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.harness import Api


@pytest.fixture
def server_settings() -> dict[str, Any]:
    return {"abandon_after_s": 1.0}


async def test_a_waiting_customer_whose_app_is_gone_has_abandoned(api: Api) -> None:
    gone = await api.customer("C1011")
    socket = await gone.connect()
    left = (await gone.post("/api/v1/calls", {})).body["call_id"]
    no_app = await api.customer("C1012")
    never_came = (await no_app.post("/api/v1/calls", {})).body["call_id"]
    present = await api.customer("C1013")
    present_socket = await present.connect()
    waits = (await present.post("/api/v1/calls", {})).body["call_id"]

    await socket.close()
    for _ in range(100):
        view = await gone.get(f"/api/v1/calls/{left}")
        if view.body["state"] == "ended":
            break
        await asyncio.sleep(0.1)
    assert view.body["state"] == "ended" and view.body["end_reason"] == "abandoned"
    # A call whose app never opened a socket is abandoned after the same setting,
    # counted from its creation; a customer whose app stays connected keeps waiting.
    for _ in range(100):
        view = await no_app.get(f"/api/v1/calls/{never_came}")
        if view.body["state"] == "ended":
            break
        await asyncio.sleep(0.1)
    assert view.body["state"] == "ended" and view.body["end_reason"] == "abandoned"
    assert (await present.get(f"/api/v1/calls/{waits}")).body["state"] == "queued"
    await present_socket.send({"type": "ping"})
    await present_socket.expect("pong")

    supervisor = await api.supervisor()
    stats = (await supervisor.get("/api/v1/stats")).body
    assert stats["abandonment"] == 1.0  # both abandoned calls, of two ended
