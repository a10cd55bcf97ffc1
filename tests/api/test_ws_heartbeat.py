"""Each socket is pinged at its role's period, and one that stops answering is closed.

The clients here do not answer pings by themselves (``autoping=False``), so every
ping the server sends is seen, and a client that does not answer is one whose
network is gone. The test also fails if aiohttp's heartbeat internals, which
``server/hub/heartbeat.py`` retunes, change under it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from server.hub.heartbeat import check_heartbeat_internals
from tests.api.harness import Api

STAFF_PERIOD_S = 0.2
CUSTOMER_PERIOD_S = 1.0


@pytest.fixture
def server_settings() -> dict[str, Any]:
    return {"ws_heartbeat_s": STAFF_PERIOD_S, "ws_customer_heartbeat_s": CUSTOMER_PERIOD_S}


class PingLog:
    """A socket that records when pings arrive and, if told to, answers them."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, answer: bool = True) -> None:
        self.ws = ws
        self.answer = answer
        self.pings: list[float] = []
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.PING:
                self.pings.append(loop.time())
                if self.answer:
                    await self.ws.pong(msg.data)
        self.closed.set()

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def _socket(api: Api, role: str, subject: str, answer: bool = True) -> PingLog:
    token = await api.token(role, subject)
    ws = await api.session.ws_connect(api.base_url + "/api/v1/ws", autoping=False)
    await ws.send_json({"type": "hello", "token": token})
    welcome = await ws.receive_json(timeout=5)
    assert welcome["type"] == "welcome", welcome
    return PingLog(ws, answer)


async def test_a_customer_is_pinged_less_often_than_staff(api: Api) -> None:
    staff = await _socket(api, "supervisor", "SUP1")
    customer = await _socket(api, "customer", "C1001")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(customer.pings) < 2 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert len(customer.pings) >= 2, "the customer's socket was never pinged"
    gaps = [b - a for a, b in zip(customer.pings, customer.pings[1:], strict=False)]
    # Never sooner than its own period (a ping can only come late, never early) ...
    assert min(gaps) >= CUSTOMER_PERIOD_S * 0.9, gaps
    # ... while the staff socket, on the shorter period, was pinged all along.
    staff_meanwhile = [t for t in staff.pings if customer.pings[0] <= t <= customer.pings[1]]
    assert len(staff_meanwhile) >= 2, (staff.pings, customer.pings)
    assert not customer.closed.is_set() and not staff.closed.is_set()
    await customer.close()
    await staff.close()


async def test_a_customer_who_stops_answering_pings_is_closed(api: Api) -> None:
    silent = await _socket(api, "customer", "C1002", answer=False)
    await asyncio.wait_for(silent.closed.wait(), timeout=10)
    assert silent.pings, "closed without being pinged first"
    await silent.close()


def test_the_heartbeat_internals_are_where_the_retuning_expects_them() -> None:
    check_heartbeat_internals()  # raises, naming what moved, on an aiohttp that changed
