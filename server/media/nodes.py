"""Media nodes as the server sees them: hosting one, and routing a call's signaling to its node.

:class:`NodeHost` runs a :class:`~signaling.media.node.MediaNode`: it registers
the node in the directory and keeps its heartbeat, takes control messages for
it (directly in-process, or from the node's Redis channel), and delivers what
the node sends to the parties through the hub (or the hub's bus, in a
``cloudbranch media-node`` process that has no client sockets of its own).

:class:`MediaRelay` is what the media coordinator talks to: it finds the call's
node in the directory and calls it directly when it is this process's node,
else publishes the control message on that node's channel.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import structlog
from redis.asyncio import Redis

from server.tasks import cancel_and_wait
from signaling.media.bridge import BridgeRefused
from signaling.media.interface import MediaNodeBackend, MediaNodeFactory
from signaling.media.node import MediaNode
from signaling.media.tap import MediaTapFactory, Party
from signaling.relay import CallParties

from .directory import MediaDirectory, NodeEntry
from .keyframes import KeyframeLine

__all__ = ["MediaRelay", "NodeHost", "control_channel"]

log = structlog.get_logger(__name__)

# Delivers a message to a client wherever it is connected: (role, subject, message).
Deliver = Callable[[str, str, dict[str, Any]], Awaitable[None]]


# Control messages of one call waiting for its worker; a call sends a handful.
CALL_CONTROL_QUEUE = 256
CALL_WORKER_IDLE_S = 30.0


# Uncounts an offer or answer a node refused: (call_id, "offer"|"answer", generation).
DescriptionRefused = Callable[[str, Literal["offer", "answer"], int], Awaitable[None]]


def control_channel(node_id: str) -> str:
    return f"cb:media:ctl:{node_id}"


class NodeHost:
    """Runs one media node: registration, heartbeats, control messages, delivery."""

    def __init__(
        self,
        node_id: str,
        *,
        directory: MediaDirectory,
        deliver: Deliver,
        ice_servers: Callable[[str], Sequence[Mapping[str, Any]]],
        taps: MediaTapFactory | None = None,
        capacity: int,
        heartbeat_s: float,
        address: str = "in-process",
        redis: Redis | None = None,
        node_factory: MediaNodeFactory = MediaNode,
        on_call_closed: Callable[[str], Awaitable[None]] | None = None,
        keyframes: KeyframeLine | None = None,
        on_description_refused: DescriptionRefused | None = None,
    ) -> None:
        self.node_id = node_id
        self._directory = directory
        self._deliver = deliver
        self._capacity = capacity
        self._heartbeat_s = heartbeat_s
        self._address = address
        self._redis = redis
        # What else lets go of a call when its media closes here (its recorder).
        self._on_call_closed = on_call_closed
        # Remote control only: uncounts an offer or answer this node refused.
        self._on_description_refused = on_description_refused
        self._listening = False
        self._calls: dict[str, CallParties] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # One worker per call with control messages queued (remote control only).
        self._workers: dict[str, tuple[asyncio.Queue[dict[str, Any]], asyncio.Task[None]]] = {}
        # The media engine behind the node (CLOUDBRANCH_MEDIA_BACKEND): aiortc or Janus.
        self.node: MediaNodeBackend = node_factory(node_id, self._send, ice_servers, taps, capacity)
        self.node.on_calls_lost = self._calls_lost
        if keyframes is not None:
            keyframes.connect(self.node)  # the taps' keyframe requests reach this node

    async def start(self) -> None:
        await self.node.start()  # a Janus backend starts or reaches its Janus here
        await self._beat()
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="media-node-heartbeat"))
        if self._redis is not None:
            ready = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._listen(ready), name="media-node-control"))
            await asyncio.wait_for(ready.wait(), timeout=10)
        log.info("media.node_started", node_id=self.node_id, capacity=self._capacity)

    async def handle(
        self, op: str, call: CallParties, party: Party | None, message: Mapping[str, Any] | None
    ) -> None:
        """One control message for a call of this node; BridgeRefused when refused."""
        self._calls[call.call_id] = call
        if op == "signal" and party is not None and message is not None:
            await self.node.signal(call.call_id, party, message)
        elif op == "restart":
            await self.node.restart(call.call_id)
        elif op == "party_left" and party is not None:
            await self.node.party_left(call.call_id, party)
        elif op == "close":
            self._calls.pop(call.call_id, None)
            await self.node.close_call(call.call_id)
            if self._on_call_closed is not None:
                await self._on_call_closed(call.call_id)

    @property
    def listening(self) -> bool:
        """Whether control messages reach this node (always, in-process)."""
        return self._redis is None or self._listening

    async def close(self) -> None:
        """Stop taking messages, close every call's media, deregister; safe twice."""
        tasks, self._tasks = self._tasks, []
        tasks += [task for _, task in self._workers.values()]
        for task in tasks:
            await cancel_and_wait(task)
        await self.node.close()
        try:
            await self._directory.deregister(self.node_id)
        except (ConnectionError, OSError) as exc:
            log.warning("media.node_deregister_failed", error=str(exc))

    def _calls_lost(self, call_ids: list[str]) -> None:
        """The node's media engine died with these calls: park them on a node that is
        never live, so that servers move them (media.restart) as off a dead node."""
        task = asyncio.create_task(self._park(call_ids), name="media-node-lost-calls")
        self._tasks.append(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        """A finished one-off task leaves the list (each loss of the engine adds one)."""
        if task in self._tasks:
            self._tasks.remove(task)

    async def _park(self, call_ids: list[str]) -> None:
        for call_id in call_ids:
            try:
                await self._directory.mark_lost(call_id, self.node_id)
            except (ConnectionError, OSError) as exc:
                log.warning("media.lost_call_not_parked", call_id=call_id, error=str(exc))
        log.warning("media.calls_lost", node_id=self.node_id, calls=len(call_ids))

    async def _send(self, call_id: str, party: Party, message: dict[str, Any]) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            await self._deliver(party, call.subject_of(party), message)

    async def _beat(self) -> None:
        if not self.node.healthy:
            # Its media engine is down: let the heartbeat lapse so that servers move
            # its calls (media.restart) rather than send them to a node that cannot carry them.
            log.warning("media.node_unhealthy", node_id=self.node_id)
            return
        await self._directory.heartbeat(
            NodeEntry(self.node_id, self._address, self._capacity, self.node.load, time.time())
        )

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self._beat()
            except (ConnectionError, OSError) as exc:
                log.warning("media.node_heartbeat_failed", error=str(exc))

    async def _listen(self, ready: asyncio.Event) -> None:
        assert self._redis is not None
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(control_channel(self.node_id))
                    self._listening = True
                    ready.set()
                    async for item in pubsub.listen():
                        if item.get("type") == "message":
                            self._queue_control(json.loads(item["data"]))
            except (ConnectionError, OSError) as exc:
                self._listening = False
                log.warning("media.node_control_reconnect", error=str(exc))
                await asyncio.sleep(1.0)

    def _queue_control(self, data: dict[str, Any]) -> None:
        """Hand a control message to its call's worker: in order within a call, and
        one call's slow step (ICE gathering, say) never holds up the others."""
        call_id = str(data["call"]["call_id"])
        worker = self._workers.get(call_id)
        if worker is None:
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(CALL_CONTROL_QUEUE)
            task = asyncio.create_task(self._work(call_id, queue), name="media-node-call")
            worker = self._workers[call_id] = (queue, task)
        try:
            worker[0].put_nowait(data)
        except asyncio.QueueFull:
            log.warning("media.control_dropped", call_id=call_id, op=data.get("op"))

    async def _work(self, call_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(CALL_WORKER_IDLE_S):
                        data = await queue.get()
                except TimeoutError:
                    return  # idle: a new message starts a new worker
                await self._on_control(data)
                if data.get("op") == "close":
                    return
        finally:
            if self._workers.get(call_id, (None, None))[0] is queue:
                del self._workers[call_id]

    async def _on_control(self, data: dict[str, Any]) -> None:
        call = CallParties(**data["call"])
        party = data.get("party")
        try:
            await self.handle(data["op"], call, party, data.get("message"))
        except BridgeRefused as exc:
            # Uncounted before the party hears of it: its next offer or answer, sent
            # as soon as it reads the error, must find the refused one gone.
            await self._description_was_refused(call.call_id, data)
            if party is not None:
                await self._deliver(
                    party,
                    call.subject_of(party),
                    {"type": "error", "code": exc.code, "detail": exc.detail},
                )
        except Exception:
            # One call's failure must not stop the node's control loop.
            log.exception("media.control_failed", call_id=call.call_id, op=data.get("op"))

    async def _description_was_refused(self, call_id: str, data: Mapping[str, Any]) -> None:
        message, generation = data.get("message") or {}, data.get("generation")
        kind: Literal["offer", "answer"] | None = {
            "webrtc.offer": "offer",
            "webrtc.answer": "answer",
        }.get(str(message.get("type")))  # type: ignore[assignment]
        if self._on_description_refused is None or kind is None or generation is None:
            return
        try:
            await self._on_description_refused(call_id, kind, int(generation))
        except Exception as exc:  # the party still hears of the refusal
            log.warning("media.refusal_not_recorded", call_id=call_id, error=type(exc).__name__)


class MediaRelay:
    """Routes each call's media control to the node relaying it."""

    def __init__(
        self,
        directory: MediaDirectory,
        local: NodeHost | None,
        redis: Redis | None = None,
    ) -> None:
        self.directory = directory
        self.local = local
        self._redis = redis

    async def assign(self, call_id: str) -> str:
        return await self.directory.assign(call_id)

    async def signal(
        self,
        call: CallParties,
        party: Party,
        message: Mapping[str, Any],
        *,
        generation: int | None = None,
    ) -> None:
        """A party's ``webrtc.*`` message to the call's node. ``generation``: the media
        session's generation an offer or answer was counted in, for a node in another
        process to uncount it if it refuses it (a node in this one raises instead)."""
        await self._to_node("signal", call, party, message, generation)

    async def restart(self, call: CallParties) -> None:
        await self._to_node("restart", call, None, None)

    async def party_left(self, call: CallParties, party: Party) -> None:
        await self._to_node("party_left", call, party, None)

    async def close_call(self, call: CallParties) -> None:
        await self._to_node("close", call, None, None)
        await self.directory.release(call.call_id)

    async def lost(self, call_ids: Sequence[str]) -> list[str]:
        """Calls among ``call_ids`` whose media node is no longer alive."""
        live = {n.node_id for n in await self.directory.live_nodes()}
        nodes = await self.directory.nodes_of(call_ids)
        return [
            call_id
            for call_id, node_id in zip(call_ids, nodes, strict=True)
            if node_id is not None and node_id not in live
        ]

    async def reassign(self, call_id: str) -> bool:
        """Move a call off its dead node; True for the one server that moved it."""
        dead = await self.directory.node_of(call_id)
        return dead is not None and await self.directory.reassign(call_id, dead)

    async def _to_node(
        self,
        op: str,
        call: CallParties,
        party: Party | None,
        message: Mapping[str, Any] | None,
        generation: int | None = None,
    ) -> None:
        node_id = await self.directory.node_of(call.call_id)
        if node_id is None:
            node_id = await self.directory.assign(call.call_id)
        if self.local is not None and node_id == self.local.node_id:
            await self.local.handle(op, call, party, message)
            return
        if self._redis is None:
            raise BridgeRefused("media_unavailable", "the call's media node is not reachable")
        payload = {
            "op": op,
            "call": {
                "call_id": call.call_id,
                "customer_id": call.customer_id,
                "specialist_id": call.specialist_id,
            },
            "party": party,
            "message": dict(message) if message is not None else None,
            "generation": generation,
        }
        await self._redis.publish(control_channel(node_id), json.dumps(payload))
