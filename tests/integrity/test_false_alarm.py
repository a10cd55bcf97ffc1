"""False alarms: a 5-minute live synthetic call raises no signal.

A real media node with the analysis in its real worker process, real aiortc
peers; the customer's camera is a live :class:`~tests.integrity.sources.SyntheticCamera`
(one face, light drift, sensor noise, jittered capture times). Over the whole
call no signal may start, and the status stays ``ok``.

A peer connection that drops meanwhile (on a loaded machine aiortc's ICE consent
checks over loopback sometimes fail) is set up again as the server would
(``media.restart`` to both parties, a new leg on the node); the analysis must
pick the call up again, and a reconnection must not look like an attack either.

Bound: FALSE_ALARM_S (300 s) of call plus about 20 s to set up (and up to a
minute per reconnection; the timeout allows 240 s more); mostly waiting
(one camera at 320x240 and 15 fps, 3 analysed samples a second), so it runs
beside the rest of the suite: ``make test`` gives this file a shard of its own
(TEST_SHARDS in the Makefile), which is shorter than the other shards. The same
run with its figures: ``bench/integrity.py --false-alarm 300``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.integrity.harness import AnalysedNode, analysed_node, customer_call
from tests.integrity.sources import SyntheticCamera
from tests.media.node_harness import RelayedCall
from tests.media.peer import PeerFailed

FALSE_ALARM_S = 300.0
#: Seconds between checks: a signal is named as soon as it starts (the test stops there).
CHECK_EVERY_S = 5.0
#: Dropped peer connections set up again before the run counts as broken.
MAX_RESTARTS = 5

pytestmark = [pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(FALSE_ALARM_S + 240)]


async def test_a_five_minute_live_call_raises_no_signal() -> None:
    async with analysed_node() as node:
        camera = SyntheticCamera(faces=1, seed=7)
        async with customer_call(node, camera) as call:
            await node.wait_analysing("call-1", samples=6)
            started, first = time.monotonic(), node.state("call-1").analysed
            restarts = 0
            while (elapsed := time.monotonic() - started) < FALSE_ALARM_S:
                await asyncio.sleep(min(CHECK_EVERY_S, FALSE_ALARM_S - elapsed))
                state = node.state("call-1")
                where = f"after {elapsed:.0f} s, {restarts} restarts ({_counters(node)})"
                assert state.episodes == [], f"{where}: {[e.view() for e in state.episodes]}"
                if state.status == "ok":
                    continue
                # Only a dropped connection may interrupt the analysis: see it come
                # back by itself, or see the connection go and set it up again.
                if await _back_or_dropped(node, call, where) == "dropped":
                    restarts += 1
                    assert restarts <= MAX_RESTARTS, where
                    await _restart(call)
            if node.state("call-1").status != "ok":  # a drop in the last seconds
                where = f"at the end, {restarts} restarts ({_counters(node)})"
                if await _back_or_dropped(node, call, where) == "dropped":
                    restarts += 1
                    await _restart(call)
                    await node.wait_for("call-1", lambda s: s.status == "ok", 60)
            state = node.state("call-1")
            # Analysed throughout: 3 samples a second are sent; at least one a second
            # came back (half that when connections had to be set up again).
            least = FALSE_ALARM_S if not restarts else FALSE_ALARM_S / 2
            assert state.analysed - first >= least, _counters(node)
            assert state.episodes == [] and state.status == "ok"
            # No signal ever: every status the analysis reported is ok (or unknown,
            # while a dropped connection was being set up again).
            statuses = {status for _, status, _ in node.changes.seen["call-1"]}
            assert statuses == ({"ok", "unknown"} if restarts else {"ok"}), statuses
            assert all(len(s.faces) == 1 for s in list(state.samples)[-60:])


def _counters(node: AnalysedNode) -> str:
    state, tap, pool = node.state("call-1"), node.taps.taps.get("call-1"), node.taps.pool
    return (
        f"analysed {state.analysed}, tap {tap.counters if tap else None}, "
        f"pool submitted {pool.submitted} dropped {pool.dropped} errors {pool.errors}"
    )


def _dropped(call: RelayedCall) -> bool:
    return any(p.connection_state in ("failed", "closed") for p in (call.app, call.desk))


async def _back_or_dropped(node: AnalysedNode, call: RelayedCall, where: str) -> str:
    deadline = time.monotonic() + 45.0
    while True:
        if _dropped(call):
            return "dropped"
        if node.state("call-1").status == "ok":
            return "ok"
        assert time.monotonic() < deadline, f"{where}: not ok, and no connection dropped"
        await asyncio.sleep(0.5)


async def _restart(call: RelayedCall) -> None:
    """What the server's media coordinator does for a dropped connection."""
    await call.node.restart(call.call_id)
    for peer, role in ((call.app, "answerer"), (call.desk, "offerer")):
        await peer.handle(
            {"type": "media.restart", "call_id": call.call_id, "role": role, "ice_servers": []}
        )
    with contextlib.suppress(TimeoutError, PeerFailed):
        await call.app.wait_connected(timeout=60)  # else it shows as dropped next time
