"""The hello deadline runs from the socket's arrival, and it is the client's.

A node too busy to read a socket in time (here: its event loop blocked past
every deadline, as a storm of connects does) still answers a hello that reached
it in time, late, and closes a socket that said nothing (4401). Both sockets
arrived before the node stalled, so both deadlines had passed when it resumed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from server.hub.ws import first_message
from tests.api.harness import Api
from tests.api.helpers import closed_with

CLOSE_UNAUTHORIZED = 4401
HELLO_TIMEOUT_S = 0.5


@pytest.fixture
def server_settings() -> dict[str, Any]:
    return {"ws_hello_timeout_s": HELLO_TIMEOUT_S}


async def test_a_busy_node_answers_a_hello_that_came_in_time_and_closes_a_silent_one(
    api: Api,
) -> None:
    token = await api.token("customer", "C1005")
    spoke, silent = await api.socket(), await api.socket()
    await asyncio.sleep(0.05)  # both handlers now wait for their hello
    await spoke.send({"type": "hello", "token": token})  # in the node's kernel buffer now
    # The node stalls past both deadlines (it shares this loop): what a storm does.
    time.sleep(HELLO_TIMEOUT_S * 3)  # noqa: ASYNC251
    welcome = await spoke.next()
    assert welcome["type"] == "welcome" and welcome["subject"] == "C1005"
    assert await closed_with(silent) == CLOSE_UNAUTHORIZED
    await spoke.close()


class _Silent:
    """A socket whose client has sent nothing."""

    async def receive(self) -> Any:
        await asyncio.Event().wait()


class _Spoke:
    """A socket whose client's first message was read already."""

    async def receive(self) -> str:
        return "hello"


class _Request:
    transport = None  # nothing left unread in the kernel


async def test_the_deadline_counts_from_arrival_not_from_when_the_node_looks() -> None:
    loop = asyncio.get_running_loop()
    arrived_long_ago = loop.time() - 60
    deadline = arrived_long_ago + HELLO_TIMEOUT_S
    request: Any = _Request()
    # Past the deadline nothing more is awaited for a silent socket (the allowance
    # is for bytes that came in time, and there are none) ...
    silent: Any = _Silent()
    assert await asyncio.wait_for(first_message(silent, request, deadline, 3600), 5) is None
    # ... and a first message that came in time is read, however late.
    spoke: Any = _Spoke()
    assert await first_message(spoke, request, deadline, 3600) == "hello"
