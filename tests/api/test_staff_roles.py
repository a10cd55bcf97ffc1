"""Supervisor accounts share the staff table with a role of their own."""

from __future__ import annotations

from tests.api.harness import Api


async def test_supervisor_logs_in_with_the_supervisor_role(api: Api) -> None:
    reply = await api.request(
        "POST", "/api/v1/desk/login", {"username": "sun.hua", "password": "branch-demo"}
    )
    assert reply.status == 200, reply
    assert reply.body["role"] == "supervisor"
    headers = {"Authorization": f"Bearer {reply.body['token']}"}
    stats = await api.request("GET", "/api/v1/stats", headers=headers)
    assert stats.status == 200
    staff = await api.request("GET", "/api/v1/specialists", headers=headers)
    assert staff.status == 200
    assert "sun.hua" not in {s["username"] for s in staff.body}, "not counted as a specialist"
    assert len(staff.body) == 10
    # A supervisor token cannot take calls.
    presence = await api.request(
        "PUT", "/api/v1/desk/presence", {"state": "available"}, headers=headers
    )
    assert presence.status == 403
    calls = await api.request("GET", "/api/v1/supervisor/calls", headers=headers)
    assert calls.status == 200 and calls.body == []


async def test_specialist_logs_in_with_the_specialist_role(api: Api) -> None:
    reply = await api.request(
        "POST", "/api/v1/desk/login", {"username": "chen.li", "password": "branch-demo"}
    )
    assert reply.status == 200 and reply.body["role"] == "specialist"
    headers = {"Authorization": f"Bearer {reply.body['token']}"}
    assert (await api.request("GET", "/api/v1/stats", headers=headers)).status == 403
    assert (await api.request("GET", "/api/v1/supervisor/calls", headers=headers)).status == 403
