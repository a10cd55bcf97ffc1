"""False alarms: a 5-minute live synthetic call raises no signal.

A real media node with the analysis in its real worker process, real aiortc
peers; the customer's camera is a live :class:`~tests.integrity.sources.SyntheticCamera`
(one face, light drift, sensor noise, jittered capture times). Over the whole
call no signal may start, and the status stays ``ok``.

Bound: FALSE_ALARM_S (300 s) of call plus about 20 s to set up; mostly waiting
(one camera at 320x240 and 15 fps, 3 analysed samples a second), so it runs
beside the rest of the suite: ``make test`` gives this file a shard of its own
(TEST_SHARDS in the Makefile), which is shorter than the other shards. The same
run with its figures: ``bench/integrity.py --false-alarm 300``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integrity.harness import AnalysedNode, analysed_node, customer_call
from tests.integrity.sources import SyntheticCamera

FALSE_ALARM_S = 300.0
#: Seconds between checks: a signal is named as soon as it starts (the test stops there).
CHECK_EVERY_S = 5.0

pytestmark = [pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(FALSE_ALARM_S + 120)]


async def test_a_five_minute_live_call_raises_no_signal() -> None:
    async with analysed_node() as node:
        camera = SyntheticCamera(faces=1, seed=7)
        async with customer_call(node, camera):
            await node.wait_analysing("call-1", samples=6)
            started, first = time.monotonic(), node.state("call-1").analysed
            while (elapsed := time.monotonic() - started) < FALSE_ALARM_S:
                await asyncio.sleep(min(CHECK_EVERY_S, FALSE_ALARM_S - elapsed))
                state = node.state("call-1")
                where = f"after {elapsed:.0f} s ({_counters(node)})"
                assert state.episodes == [], f"{where}: {[e.view() for e in state.episodes]}"
                assert state.status == "ok", f"{where}: {state.status}"
            state = node.state("call-1")
            # Analysed throughout: at least one sample a second came back (3 are sent).
            assert state.analysed - first >= FALSE_ALARM_S, _counters(node)
            assert state.status == "ok"
            assert {status for _, status, _ in node.changes.seen["call-1"]} == {"ok"}
            assert all(len(s.faces) == 1 for s in list(state.samples)[-60:])


def _counters(node: AnalysedNode) -> str:
    state, tap, pool = node.state("call-1"), node.taps.taps.get("call-1"), node.taps.pool
    return (
        f"analysed {state.analysed}, tap {tap.counters if tap else None}, "
        f"pool submitted {pool.submitted} dropped {pool.dropped} errors {pool.errors}"
    )
