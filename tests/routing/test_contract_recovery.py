"""Contract, both backends: what recovery from lost live state relies on.

Presence keyed by connection, heartbeats that report a lost desk, restoring the
call a specialist holds, the live state's epoch, and the node liveness reaper.
"""

from __future__ import annotations

import asyncio

from server.routing.backend import QueueBackend
from server.routing.memory import MemoryQueueBackend
from server.routing.model import DesiredPresence, SpecialistProfile, SpecialistState
from tests.routing.support import call, staff


async def test_an_older_connections_late_close_does_not_log_the_desk_out(
    backend: QueueBackend,
) -> None:
    await backend.register(SpecialistProfile("s1", {"cmn": 5}))
    await backend.connect("s1", 1.0, "node1/a")
    await backend.set_presence("s1", DesiredPresence.AVAILABLE, 1.0)
    # The desk came back through another node before its old socket closed.
    await backend.connect("s1", 2.0, "node2/b")
    assert await backend.disconnect("s1", 3.0, "node1/a") is None
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.AVAILABLE
    await backend.disconnect("s1", 4.0, "node2/b")
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.OFFLINE


async def test_a_heartbeat_reports_a_desk_routing_lost(backend: QueueBackend) -> None:
    assert await backend.heartbeat("nobody", 1.0, "node1/x") is False
    await backend.register(SpecialistProfile("s1", {"cmn": 5}))
    await backend.connect("s1", 0.0, "node1/a")
    assert await backend.heartbeat("s1", 1.0, "node1/a") is True
    # Reaped while this connection lived: its heartbeat says so, once.
    await backend.reap_stale(1000.0)
    assert await backend.heartbeat("s1", 1001.0, "node1/a") is False
    # A closed connection's late heartbeat does not log the desk back in.
    await backend.connect("s1", 1002.0, "node1/a")
    await backend.disconnect("s1", 1003.0, "node1/a")
    assert await backend.heartbeat("s1", 1004.0, "node1/a") is True
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.OFFLINE
    # Another connection's heartbeat is not this one's business.
    await backend.connect("s1", 1005.0, "node2/b")
    assert await backend.heartbeat("s1", 1006.0, "node1/a") is True


async def test_restore_assignment_makes_the_specialist_busy_once(backend: QueueBackend) -> None:
    await staff(backend, "s1", {"cmn": 5})
    await backend.enqueue(call("c2"), 1.0)
    assert await backend.restore_assignment("s1", "c1", False, 1.0) is True
    assert await backend.restore_assignment("s1", "c1", False, 2.0) is False  # idempotent
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.BUSY and view.call_id == "c1"
    assert await backend.dispatch(3.0) == []  # a busy specialist gets no offer
    assert await backend.restore_assignment("s1", "c1", True, 4.0) is False
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.WRAP_UP
    await backend.finish_wrap_up("s1", 5.0)
    assert [o.call_id for o in await backend.dispatch(6.0)] == ["c2"]
    # Someone offered another call is left alone.
    assert await backend.restore_assignment("s1", "c9", False, 7.0) is False
    assert await backend.restore_assignment("unknown", "c1", False, 7.0) is False


async def test_the_epoch_is_stable_while_the_state_lives(backend: QueueBackend) -> None:
    first = await backend.epoch()
    assert first and await backend.epoch() == first


async def test_desks_of_a_node_that_stopped_renewing_are_logged_out(
    backend: QueueBackend,
) -> None:
    await backend.register(SpecialistProfile("s1", {"cmn": 5}))
    await backend.connect("s1", 1.0, "node1/a")
    await backend.set_presence("s1", DesiredPresence.AVAILABLE, 1.0)
    await backend.enqueue(call("c1"), 1.0)
    [offer] = await backend.dispatch(2.0)
    await backend.node_alive("node1", 60.0)
    assert await backend.reap_dead_nodes(3.0) == []
    if isinstance(backend, MemoryQueueBackend):
        return  # one process: its desks live and die with it
    await backend.node_alive("node1", 0.001)
    await asyncio.sleep(0.05)
    withdrawn = await backend.reap_dead_nodes(4.0)
    assert [o.offer_id for o in withdrawn] == [offer.offer_id]
    view = await backend.specialist("s1")
    assert view is not None and view.state is SpecialistState.OFFLINE and view.misses == 0
    assert await backend.position("c1") == 1
    # The node was only slow: its next heartbeat for that connection says "lost".
    assert await backend.heartbeat("s1", 5.0, "node1/a") is False


async def test_every_desk_of_a_dead_node_is_logged_out_and_only_those(
    backend: QueueBackend,
) -> None:
    if isinstance(backend, MemoryQueueBackend):
        return  # one process: its desks live and die with it
    for spec, conn in (("s1", "node1/a"), ("s2", "node2/b"), ("s3", "node1/c")):
        await backend.register(SpecialistProfile(spec, {"cmn": 5}))
        await backend.connect(spec, 1.0, conn)
    await backend.node_alive("node1", 0.001)
    await backend.node_alive("node2", 60.0)
    await asyncio.sleep(0.05)
    assert await backend.reap_dead_nodes(2.0) == []  # nobody held an offer
    states = {s: await backend.specialist(s) for s in ("s1", "s2", "s3")}
    assert states["s1"] is not None and states["s1"].state is SpecialistState.OFFLINE
    assert states["s3"] is not None and states["s3"].state is SpecialistState.OFFLINE
    assert states["s2"] is not None and states["s2"].state is not SpecialistState.OFFLINE
