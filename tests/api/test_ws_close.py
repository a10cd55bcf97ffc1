"""A socket the server closes is closed with a complete closing handshake.

The server sends its close frame and waits for the client's reply before it
drops the connection, so a client reading as usual is told the close code by
its own WebSocket library (``ws.close_code``), not 1006 "abnormal closure":
the apps decide on that code whether to reconnect (1012), log in again (4401)
or stay down (4409).
"""

from __future__ import annotations

import asyncio

import aiohttp

from tests.api.harness import Api, Socket

CLOSE_REPLACED = 4409
CLOSE_RATE_LIMITED = 4429


async def _read_until_closed(socket: Socket, within: float = 10.0) -> aiohttp.WSMessage:
    """Read as an app does, until the socket ends; the message that ended it."""
    async with asyncio.timeout(within):
        while True:
            msg = await socket.ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return msg


async def test_a_replaced_socket_is_told_4409_by_the_clients_own_library(api: Api) -> None:
    customer = await api.customer("C1001")
    first = await customer.connect()
    await customer.connect()  # the newer socket of the same customer replaces it
    ended = await _read_until_closed(first)
    assert ended.type is aiohttp.WSMsgType.CLOSE, ended
    assert ended.data == CLOSE_REPLACED
    # The client's reply reached the server before it dropped the connection.
    assert first.ws.close_code == CLOSE_REPLACED


async def test_a_client_busy_when_the_server_closes_still_gets_a_clean_close(api: Api) -> None:
    """The client reads the close only after a pause (a phone that was busy):
    the server waits for its reply rather than dropping the connection."""
    customer = await api.customer("C1002")
    first = await customer.connect()
    await customer.connect()
    await asyncio.sleep(0.5)
    ended = await _read_until_closed(first)
    assert ended.type is aiohttp.WSMsgType.CLOSE and ended.data == CLOSE_REPLACED, ended
    assert first.ws.close_code == CLOSE_REPLACED


async def test_a_socket_past_its_budget_is_closed_cleanly_while_it_keeps_sending(
    api: Api,
) -> None:
    """Closed by the server while messages keep arriving from the client."""
    customer = await api.customer("C1003")
    socket = await customer.connect()
    sent = 0
    try:
        for _ in range(2_000):
            await socket.ws.send_json({"type": "bogus.flood"})
            sent += 1
    except (ConnectionError, RuntimeError):
        pass  # the server closed the socket mid-flood
    ended = await _read_until_closed(socket)
    assert ended.type is aiohttp.WSMsgType.CLOSE and ended.data == CLOSE_RATE_LIMITED, ended
    assert socket.ws.close_code == CLOSE_RATE_LIMITED
    assert sent > 0
