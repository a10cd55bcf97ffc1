"""A socket's ping period, chosen once its hello says who is on the other end.

aiohttp takes a WebSocket's heartbeat when the response is made, before the
first message, and has no public way to change it. The period that suits a
desk (its loss must reach routing within seconds) is too short for thousands
of waiting customers: each ping costs the node a timer, a task, a write and a
read, and the customer's phone a wake-up, for a socket that already gets a
``queue.update`` every ``queue_update_interval_s``, and whose call is only
given up ``abandon_after_s`` after the app was last seen. So the socket is
made with the desk's period and :func:`retune_heartbeat` changes it after the
hello.

This is the one place that touches aiohttp's heartbeat internals; they are
checked when the application is built (:func:`check_heartbeat_internals`), and
``tests/api/test_ws_heartbeat.py`` checks the pings a client actually gets.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

# Private attributes of aiohttp.web.WebSocketResponse set below, beside its
# _reset_heartbeat method (aiohttp 3.10 to 3.14).
_INTERNALS: Final = ("_heartbeat", "_pong_heartbeat", "_heartbeat_cb")


class HeartbeatInternalsChanged(RuntimeError):
    """The aiohttp installed does not keep its heartbeat where this module looks."""


def check_heartbeat_internals() -> None:
    """Raise :class:`HeartbeatInternalsChanged` unless the internals used here exist."""
    probe = web.WebSocketResponse(heartbeat=1.0)
    missing = [name for name in _INTERNALS if not hasattr(probe, name)]
    if not callable(getattr(probe, "_reset_heartbeat", None)):
        missing.append("_reset_heartbeat()")
    if missing:
        raise HeartbeatInternalsChanged(
            f"aiohttp's WebSocketResponse no longer has {', '.join(missing)}"
        )


def retune_heartbeat(ws: web.WebSocketResponse, seconds: float) -> None:
    """From now on ping the prepared socket ``ws`` every ``seconds`` of silence,
    and close it when a pong is not back within half of that."""
    if ws._heartbeat == seconds:
        return
    ws._heartbeat = seconds
    ws._pong_heartbeat = seconds / 2.0
    pending = ws._heartbeat_cb
    if pending is not None:
        # The ping set for the old period: a shorter period must not wait for it
        # (a longer one would only have it put off again when it fires).
        pending.cancel()
        ws._heartbeat_cb = None
    ws._reset_heartbeat()
