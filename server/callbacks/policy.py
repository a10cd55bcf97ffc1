"""When a callback may be offered and when it may ring: pure rules, no I/O, no clock.

Every function takes ``now`` (seconds since the epoch) and, where local time
matters, a :class:`~zoneinfo.ZoneInfo`. Local hours and local days are always
computed in the configured zone, never in the server's own zone, so a node
running in UTC still calls a customer in Shanghai only between 08:00 and 20:00
Shanghai time.

Whose turn it is. A scheduled callback holds its original place: its rank key is
the one its call had (``enqueued_at - priority weight``, as in
:mod:`server.routing.model`). Its turn has come when the calls and earlier
callbacks ranked ahead of it are fewer than the specialists at work (available,
reserved, busy or in wrap-up). Ringing at that point, rather than only once a
specialist is idle, matters: an idle specialist is offered the best waiting call
within milliseconds, so a callback that waited for one would always lose its
place to whoever called in later. Once the customer answers, the new call enters
the queue with the original rank key and is served ahead of those later calls.
With nobody at work (the desk is closed) no callback rings at all.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.local_hours import LocalHours, zone_named
from server.routing.model import PriorityClass, QueueSnapshot, RoutingPolicy, SpecialistState

_WORKING = frozenset(
    {
        SpecialistState.AVAILABLE,
        SpecialistState.RESERVED,
        SpecialistState.BUSY,
        SpecialistState.WRAP_UP,
    }
)


def local_time(now: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(now, zone)


def local_day(now: float, zone: ZoneInfo) -> date:
    return local_time(now, zone).date()


def _seconds_of_day(moment: datetime) -> float:
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def _wall_clock(day: date, seconds: int, zone: ZoneInfo) -> float:
    """The instant the wall clock in ``zone`` shows ``seconds`` after midnight on ``day``."""
    hours, rest = divmod(seconds, 3600)
    if hours == 24:
        return start_of_day(day + timedelta(days=1), zone)
    moment = datetime.combine(day, time(hours, rest // 60), tzinfo=zone)
    return moment.timestamp()


def start_of_day(day: date, zone: ZoneInfo) -> float:
    """Local midnight at the start of ``day``."""
    return datetime.combine(day, time(0), tzinfo=zone).timestamp()


def within_hours(now: float, hours: LocalHours, zone: ZoneInfo) -> bool:
    return hours.contains(_seconds_of_day(local_time(now, zone)))


def next_opening(now: float, hours: LocalHours, zone: ZoneInfo) -> float:
    """``now`` if calling is allowed now, else the next instant it is."""
    if within_hours(now, hours, zone):
        return now
    today = local_day(now, zone)
    for offset in range(3):
        opening = _wall_clock(today + timedelta(days=offset), hours.start_s, zone)
        # A start inside a daylight-saving gap maps to an instant that may not be
        # open; only an instant that is both later and open will do.
        if opening > now and within_hours(opening, hours, zone):
            return opening
    raise AssertionError("a non-empty daily window opens within two days")


def next_day_opening(now: float, hours: LocalHours, zone: ZoneInfo) -> float:
    """The first allowed instant of the next local day (after the daily cap is used)."""
    tomorrow = start_of_day(local_day(now, zone) + timedelta(days=1), zone)
    return next_opening(tomorrow, hours, zone)


def rings_on_local_day(ring_times: Iterable[float], now: float, zone: ZoneInfo) -> int:
    """How many of ``ring_times`` fall on the same local day as ``now``."""
    today = local_day(now, zone)
    return sum(1 for at in ring_times if local_day(at, zone) == today)


def give_up_at(requested_at: float, zone: ZoneInfo, days: int) -> float:
    """Local midnight ending the ``days``-th local day of the callback (day 1: the
    day it was requested). No attempt is made at or after it."""
    return start_of_day(local_day(requested_at, zone) + timedelta(days=days), zone)


@dataclass(frozen=True)
class CallbackPolicy:
    """The tunable rules (built from settings by :func:`server.bootstrap.callback_policy`)."""

    threshold_s: float
    hours: LocalHours
    zone: ZoneInfo
    max_attempts_per_day: int
    ring_s: float
    retry_after_s: float
    max_days: int

    def __post_init__(self) -> None:
        if self.max_attempts_per_day < 1:
            raise ValueError("max_attempts_per_day must be at least 1")
        if self.ring_s <= 0 or self.retry_after_s <= 0:
            raise ValueError("ring_s and retry_after_s must be positive")
        if self.max_days < 1:
            raise ValueError("max_days must be at least 1")

    @classmethod
    def build(
        cls,
        *,
        threshold_s: float,
        hours: str,
        timezone: str,
        max_attempts_per_day: int,
        ring_s: float,
        retry_after_s: float,
        max_days: int,
    ) -> CallbackPolicy:
        return cls(
            threshold_s=threshold_s,
            hours=LocalHours.parse(hours),
            zone=zone_named(timezone),
            max_attempts_per_day=max_attempts_per_day,
            ring_s=ring_s,
            retry_after_s=retry_after_s,
            max_days=max_days,
        )


# -- the option while waiting ---------------------------------------------------------


class Unavailable(enum.StrEnum):
    """Why a waiting customer is not offered a callback."""

    NOT_WAITING = "the call is not waiting in the queue"
    NOT_ALLOWED = "the call was placed without allowing a callback"
    NO_CONSENT = "the customer has not consented to be called"
    DO_NOT_CALL = "the customer is on the do-not-call list"
    SHORT_WAIT = "the estimated wait is below the callback threshold"


def why_not_offered(
    *,
    queued: bool,
    callback_allowed: bool,
    consent: bool,
    do_not_call: bool,
    estimated_wait_s: float | None,
    threshold_s: float,
) -> Unavailable | None:
    """None if the callback option may be offered, else the first reason it may not.

    ``queued`` means waiting and not under offer to a specialist (who is about to
    answer). An unknown estimate (no handle-time history yet, or nobody at work who
    could take the call) counts as a long wait: we cannot promise a short one.
    """
    if not queued:
        return Unavailable.NOT_WAITING
    if not callback_allowed:
        return Unavailable.NOT_ALLOWED
    if not consent:
        return Unavailable.NO_CONSENT
    if do_not_call:
        return Unavailable.DO_NOT_CALL
    if estimated_wait_s is not None and estimated_wait_s < threshold_s:
        return Unavailable.SHORT_WAIT
    return None


# -- whose turn it is -----------------------------------------------------------------


def rank_key(enqueued_at: float, priority: str, routing: RoutingPolicy) -> float:
    """The queue's ordering key for a call enqueued at ``enqueued_at`` (smaller first)."""
    return enqueued_at - routing.weight(PriorityClass(priority))


@dataclass(frozen=True)
class PendingCallback:
    """A callback competing for a place: scheduled and due, or already ringing."""

    callback_id: str
    rank_key: float
    ringing: bool = False


def working_specialists(snapshot: QueueSnapshot) -> int:
    return sum(1 for s in snapshot.specialists if s.state in _WORKING)


def waiting_rank_keys(snapshot: QueueSnapshot, routing: RoutingPolicy) -> list[float]:
    return sorted(view.call.rank_key(routing) for view in snapshot.waiting)


def callbacks_due(
    pending: Sequence[PendingCallback], waiting_keys: Sequence[float], working: int
) -> list[str]:
    """Ids of the scheduled callbacks whose turn has come, best rank first.

    Each callback counts the waiting calls ranked ahead of it and every pending
    callback ranked ahead of it (a ringing one holds its place too); its turn has
    come when that count is below ``working``. Ringing callbacks are never in the
    result (they are already ringing). ``waiting_keys`` must be sorted.
    """
    due: list[str] = []
    ordered = sorted(pending, key=lambda p: (p.rank_key, p.callback_id))
    for index, callback in enumerate(ordered):
        ahead = bisect.bisect_left(waiting_keys, callback.rank_key) + index
        if ahead >= working:
            break  # everyone further back has at least as many ahead
        if not callback.ringing:
            due.append(callback.callback_id)
    return due


# -- may it ring now ------------------------------------------------------------------


class Verdict(enum.StrEnum):
    RING = "ring"
    NO_CONSENT = "skipped_no_consent"
    DO_NOT_CALL = "skipped_do_not_call"
    OUTSIDE_HOURS = "skipped_outside_hours"
    DAILY_LIMIT = "skipped_daily_limit"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Decision:
    """What to do with a callback whose turn has come.

    ``next_attempt_at`` is set for skips that wait (outside hours, daily cap);
    ``gives_up`` is true when that wait would run past the last allowed day.
    """

    verdict: Verdict
    next_attempt_at: float | None = None
    gives_up: bool = False


def decide(
    policy: CallbackPolicy,
    now: float,
    *,
    consent: bool,
    do_not_call: bool,
    rings_today: int,
    requested_at: float,
) -> Decision:
    """May this callback ring now? Consent and do-not-call first (they end it),
    then the allowed days, the allowed hours and the daily cap (they postpone it)."""
    if not consent:
        return Decision(Verdict.NO_CONSENT)
    if do_not_call:
        return Decision(Verdict.DO_NOT_CALL)
    deadline = give_up_at(requested_at, policy.zone, policy.max_days)
    if now >= deadline:
        return Decision(Verdict.GIVE_UP, gives_up=True)
    if not within_hours(now, policy.hours, policy.zone):
        opening = next_opening(now, policy.hours, policy.zone)
        return Decision(Verdict.OUTSIDE_HOURS, opening, gives_up=opening >= deadline)
    if rings_today >= policy.max_attempts_per_day:
        opening = next_day_opening(now, policy.hours, policy.zone)
        return Decision(Verdict.DAILY_LIMIT, opening, gives_up=opening >= deadline)
    return Decision(Verdict.RING)


def retry_at(policy: CallbackPolicy, now: float, requested_at: float) -> float | None:
    """When to look again after a ring that was declined or not answered; None
    when that would be past the last allowed day (give up)."""
    at = now + policy.retry_after_s
    if at >= give_up_at(requested_at, policy.zone, policy.max_days):
        return None
    return at
