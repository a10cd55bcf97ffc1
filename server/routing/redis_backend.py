"""Redis queue backend: routing state shared by several server processes (nodes).

Same semantics as :class:`~server.routing.memory.MemoryQueueBackend` (the reference),
with every change that touches more than one key done by one Lua script (see
``server/routing/lua/``), so each operation is atomic whichever node runs it: two
nodes dispatching, accepting or expiring at once cannot offer or hold a call twice,
nor give a specialist two offers or calls.

What it needs from Redis and the client:

- a standalone Redis 6.2 or later (or a Sentinel-managed primary), not Redis
  Cluster: the scripts derive key names from the prefix instead of declaring them;
- a ``redis.asyncio.Redis`` client, with or without ``decode_responses`` (replies
  are decoded here either way), and with the timeouts the caller wants on every
  round trip (:meth:`RedisQueueBackend.from_url` sets them);
- every node built with the same :class:`~server.routing.model.RoutingPolicy` and
  prefix: policy numbers are applied on the calling side and passed to the scripts.

Times are always the caller's ``now``; Redis's clock is never read. Timestamps
travel as ``repr(float)`` strings and are stored verbatim, so they come back as
the exact floats that went in.

:meth:`~RedisQueueBackend.snapshot` is one script, so it is consistent. It reads
in bulk, but it still blocks Redis for time proportional to the number of waiting
calls and specialists, and the client then builds every view: see
``bench/routing.py`` for figures. It suits supervisors and periodic estimates
better than a per-request path.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import redis_standing
from .errors import OfferExpired, SpecialistNotFound
from .model import (
    Assignment,
    DesiredPresence,
    ExpiredOffer,
    LadderStep,
    Offer,
    PriorityClass,
    QueuedCall,
    QueueSnapshot,
    RoutingPolicy,
    SpecialistProfile,
    SpecialistState,
    SpecialistView,
    WaitingCallView,
)
from .redis_scripts import Scripts
from .standing import LiveCalls, QueueChanges, Staffing, Standing

if TYPE_CHECKING:
    from redis.asyncio import Redis

_OFFER_FIELDS = 6
_SPEC_FIELDS = 9
# Members of the rank zsets are "<16-digit arrival number>:<call id>".
_MEMBER_ID_AT = 17


def _num(value: float) -> str:
    """A float as a string that parses back (in Python, Lua and Redis) to the same float."""
    return repr(float(value))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _list(value: Any) -> list[Any]:
    """A JSON array from a script (whose JSON encoder writes an empty one as {})."""
    return list(value) if isinstance(value, list) else []


def _offer(fields: Sequence[Any]) -> Offer:
    offer_id, call_id, specialist_id, step, created, expires = (_text(f) for f in fields)
    return Offer(
        offer_id=offer_id,
        call_id=call_id,
        specialist_id=specialist_id,
        step=LadderStep(step),
        created_at=float(created),
        expires_at=float(expires),
    )


def _offers(flat: Sequence[Any]) -> list[Offer]:
    return [_offer(flat[i : i + _OFFER_FIELDS]) for i in range(0, len(flat), _OFFER_FIELDS)]


def _maybe_offer(flat: Sequence[Any]) -> Offer | None:
    return _offer(flat) if flat else None


def _state(desired: str, connected: str, offer: str, call: str, wrap: str) -> SpecialistState:
    """Same rule as the in-process backend and the scripts' ``spec_state``."""
    if call:
        return SpecialistState.WRAP_UP if wrap == "1" else SpecialistState.BUSY
    if connected != "1":
        return SpecialistState.OFFLINE
    if offer:
        return SpecialistState.RESERVED
    return SpecialistState(desired)


def _view(specialist_id: str, fields: Sequence[Any]) -> SpecialistView:
    desired, connected, offer, call, wrap, misses, fluent, intents = (_text(f) for f in fields)
    return SpecialistView(
        specialist_id=specialist_id,
        state=_state(desired, connected, offer, call, wrap),
        fluent_dialects=frozenset(json.loads(fluent)),
        call_id=call or None,
        misses=int(misses),
        intents=frozenset(_list(json.loads(intents))),
    )


class RedisQueueBackend:
    """Multi-node implementation of :class:`~server.routing.backend.QueueBackend`."""

    # One dispatch script makes at most this many offers before handing Redis back
    # to other clients; dispatch() runs it again until nothing is left to offer.
    max_offers_per_script = 64

    def __init__(
        self,
        client: Redis,
        policy: RoutingPolicy | None = None,
        *,
        prefix: str = "cb:",
        owns_client: bool = False,
    ) -> None:
        """Use ``client`` (closed by :meth:`close` only if ``owns_client``); every key
        this backend touches starts with ``prefix``."""
        self.policy = policy or RoutingPolicy()
        self.prefix = prefix
        self._client = client
        self._owns_client = owns_client
        self._closed = False
        self._scripts = Scripts(client, prefix)

    @classmethod
    def from_url(
        cls,
        url: str,
        policy: RoutingPolicy | None = None,
        *,
        prefix: str = "cb:",
        timeout_s: float = 5.0,
    ) -> RedisQueueBackend:
        """A backend with a client of its own, closed by :meth:`close`."""
        from redis.asyncio import Redis

        client = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
        return cls(client, policy, prefix=prefix, owns_client=True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    async def ping(self) -> None:
        """One no-op script round trip: a readiness probe, and the floor that the
        routing scripts' latency is measured against."""
        await self._scripts.run("noop")

    async def clear(self) -> int:
        """Delete every key under this backend's prefix (before rebuilding the live
        state from SQL, or after a test); returns how many there were."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
        keys = [key async for key in self._client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            await self._client.unlink(*keys[start : start + 1000])
        return len(keys)

    # -- calls ---------------------------------------------------------------
    # The most change-log entries one read returns; the reader reads on from there.
    max_changes_per_read = 1024
    max_standings_per_script = 500

    async def enqueue(self, call: QueuedCall, now: float) -> int:
        return (await self.enqueue_standing(call, now)).position

    async def enqueue_standing(self, call: QueuedCall, now: float) -> Standing:
        reply = await self._scripts.run_list(
            "enqueue",
            call.call_id,
            call.customer_id,
            call.dialect or "",
            call.priority.value,
            _num(call.enqueued_at),
            _num(call.rank_key(self.policy)),
            _num(call.dialect_deadline(self.policy)),
            _num(now),
            json.dumps(
                [
                    call.customer_id,
                    call.dialect,
                    call.priority.value,
                    _num(call.enqueued_at),
                    call.intent,
                ]
            ),
            call.skill_key or "",
            _num(call.skill_deadline(self.policy)),
        )
        return redis_standing.standings(reply)[1][0]

    async def remove(self, call_id: str, now: float) -> Offer | None:
        return _maybe_offer(await self._scripts.run_list("remove", call_id, _num(now)))

    async def position(self, call_id: str) -> int | None:
        position = int(await self._scripts.run("position", call_id))
        return position or None

    async def standings(self, call_ids: Sequence[str]) -> tuple[int, list[Standing]]:
        # In chunks, so one script never blocks Redis for long; each standing
        # carries the version it was read at.
        version, found = 0, []
        for start in range(0, max(1, len(call_ids)), self.max_standings_per_script):
            chunk = call_ids[start : start + self.max_standings_per_script]
            version, part = redis_standing.standings(
                await self._scripts.run_list("standings", *chunk)
            )
            found.extend(part)
        return version, found

    async def queue_changes(self, since: int) -> QueueChanges:
        reply = await self._scripts.run_list("changes", since, self.max_changes_per_read)
        return redis_standing.changes(reply, since)

    async def queue_version(self) -> int:
        return int(await self._client.get(self._key("qver")) or 0)

    async def staffing(self) -> Staffing:
        return redis_standing.staffing(await self._scripts.run_list("staffing"))

    # -- specialists -----------------------------------------------------------
    async def register(self, profile: SpecialistProfile) -> None:
        fluent = sorted(profile.fluent_dialects(self.policy))
        document = {"dialects": dict(profile.dialects), "skills": sorted(profile.skills)}
        await self._scripts.run(
            "register",
            profile.specialist_id,
            json.dumps(fluent),
            json.dumps(document),
            json.dumps(sorted(profile.skill_keys(self.policy))),
            json.dumps(sorted(profile.intents())),
        )

    async def connect(
        self, specialist_id: str, now: float, connection: str = ""
    ) -> SpecialistState:
        return self._state_reply(
            specialist_id,
            await self._scripts.run("connect", specialist_id, _num(now), connection),
        )

    async def heartbeat(self, specialist_id: str, now: float, connection: str = "") -> bool:
        # A heartbeat never logs a desk back in by itself (see heartbeat.lua): it
        # reports a desk that routing lost, and the caller connects it again.
        reply = _text(await self._scripts.run("heartbeat", specialist_id, _num(now), connection))
        return reply != "lost"

    async def disconnect(
        self, specialist_id: str, now: float, connection: str = ""
    ) -> Offer | None:
        return _maybe_offer(
            await self._scripts.run_list("disconnect", specialist_id, _num(now), connection)
        )

    async def set_presence(
        self, specialist_id: str, desired: DesiredPresence, now: float
    ) -> SpecialistState:
        reply = await self._scripts.run("set_presence", specialist_id, desired.value, _num(now))
        return self._state_reply(specialist_id, reply)

    async def specialist(self, specialist_id: str) -> SpecialistView | None:
        fields = await self._client.hmget(
            self._key(f"spec:{specialist_id}"),
            ["desired", "connected", "offer", "call", "wrap", "misses", "fluent", "intents"],
        )
        if fields[0] is None:
            return None
        return _view(specialist_id, [*fields[:7], fields[7] or "[]"])

    async def restore_assignment(
        self, specialist_id: str, call_id: str, wrap_up: bool, now: float
    ) -> bool:
        reply = await self._scripts.run(
            "restore_assignment", specialist_id, call_id, "1" if wrap_up else "0"
        )
        return bool(int(reply))

    async def epoch(self) -> str:
        # SET NX: the first node to look after Redis came back empty names the new
        # generation; every node that knew another one sees the change.
        key = self._key("epoch")
        await self._client.set(key, secrets.token_hex(8), nx=True)
        return _text(await self._client.get(key) or "")

    async def node_alive(self, node_id: str, ttl_s: float) -> None:
        await self._client.set(self._key(f"node:{node_id}"), "1", px=max(1, int(ttl_s * 1000)))

    async def reap_dead_nodes(self, now: float) -> list[Offer]:
        return _offers(await self._scripts.run_list("reap_dead_nodes", _num(now)))

    async def reap_stale(self, now: float) -> list[Offer]:
        cutoff = _num(now - self.policy.presence_ttl_s)
        return _offers(await self._scripts.run_list("reap_stale", cutoff, _num(now)))

    # -- offers ----------------------------------------------------------------
    async def dispatch(self, now: float) -> list[Offer]:
        expires = _num(now + self.policy.offer_lease_s)
        made: list[Offer] = []
        while True:
            # A fresh random half per run keeps offer ids unguessable; the script
            # appends a counter that makes them unique.
            flat = await self._scripts.run_list(
                "dispatch", _num(now), expires, secrets.token_hex(8), self.max_offers_per_script
            )
            batch = _offers(flat)
            made.extend(batch)
            if len(batch) < self.max_offers_per_script:
                return made

    async def expire_offers(self, now: float) -> list[ExpiredOffer]:
        flat = await self._scripts.run_list(
            "expire_offers", _num(now), self.policy.max_consecutive_misses
        )
        step = _OFFER_FIELDS + 1
        return [
            ExpiredOffer(
                offer=_offer(flat[i : i + _OFFER_FIELDS]),
                specialist_now_away=_text(flat[i + _OFFER_FIELDS]) == "1",
            )
            for i in range(0, len(flat), step)
        ]

    async def accept(self, offer_id: str, specialist_id: str, now: float) -> Assignment:
        call_id = _text(await self._scripts.run("accept", offer_id, specialist_id, _num(now)))
        if not call_id:
            raise OfferExpired(offer_id)
        return Assignment(call_id=call_id, specialist_id=specialist_id, accepted_at=now)

    async def decline(self, offer_id: str, specialist_id: str, now: float) -> Offer:
        offer = _maybe_offer(
            await self._scripts.run_list("decline", offer_id, specialist_id, _num(now))
        )
        if offer is None:
            raise OfferExpired(offer_id)
        return offer

    async def pending_offer(self, specialist_id: str) -> Offer | None:
        return _maybe_offer(await self._scripts.run_list("pending_offer", specialist_id))

    # -- after accept ----------------------------------------------------------
    async def end_call(self, specialist_id: str, now: float) -> None:
        if not int(await self._scripts.run("end_call", specialist_id)):
            raise SpecialistNotFound(specialist_id)

    async def finish_wrap_up(self, specialist_id: str, now: float) -> SpecialistState:
        reply = await self._scripts.run("finish_wrap_up", specialist_id, _num(now))
        return self._state_reply(specialist_id, reply)

    async def live_calls(self) -> LiveCalls:
        return redis_standing.live_calls(await self._scripts.run("live_calls"))

    async def snapshot(self, now: float) -> QueueSnapshot:
        document = json.loads(_text(await self._scripts.run("snapshot", _num(now))))
        info, offered, specs = (_list(document[k]) for k in ("info", "offered", "specs"))
        # One parse for all the per-call documents, not one each.
        details = dict(zip(info[::2], json.loads(f"[{','.join(info[1::2])}]"), strict=True))
        offered_ids = set(offered[::2])
        dialect_step = set(_list(document["dialect_step"]))
        skill_step = set(_list(document.get("skill_step")))
        waiting = []
        for index, member in enumerate(_list(document["order"])):
            call_id = member[_MEMBER_ID_AT:]
            # Calls queued before intents were routed have four fields.
            customer_id, dialect, priority, enqueued_at, *rest = details[call_id]
            call = QueuedCall(
                call_id=call_id,
                customer_id=customer_id,
                dialect=dialect,
                priority=PriorityClass(priority),
                enqueued_at=float(enqueued_at),
                intent=rest[0] if rest else None,
            )
            if call_id in skill_step:
                step = LadderStep.SKILL
            elif call_id in dialect_step:
                step = LadderStep.DIALECT
            else:
                step = LadderStep.ANY
            waiting.append(
                WaitingCallView(
                    call=call, position=index + 1, step=step, offered=call_id in offered_ids
                )
            )
        specialists = tuple(
            _view(specs[i], specs[i + 1 : i + _SPEC_FIELDS])
            for i in range(0, len(specs), _SPEC_FIELDS)
        )
        return QueueSnapshot(taken_at=now, waiting=tuple(waiting), specialists=specialists)

    # -- helpers ---------------------------------------------------------------
    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @staticmethod
    def _state_reply(specialist_id: str, reply: Any) -> SpecialistState:
        state = _text(reply)
        if not state:
            raise SpecialistNotFound(specialist_id)
        return SpecialistState(state)
