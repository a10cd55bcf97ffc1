"""Replies of the Redis backend's standing, change-log and staffing scripts, parsed.

The scripts are ``standings.lua``, ``changes.lua``, ``staffing.lua`` and the
standing that ``enqueue.lua`` answers with; their reply layouts are at the top of
each file and of ``common.lua`` (``standing_reply``, the ``qlog`` entries).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .model import LadderStep, SpecialistState, SpecialistView
from .standing import (
    ChangeKind,
    LiveCalls,
    QueueChange,
    QueueChanges,
    Rank,
    Staffing,
    Standing,
    staffing_of,
)

STANDING_FIELDS = 11
# Members of the rank zsets are "<16-digit arrival number>:<call id>".
_SEQ_DIGITS = 16


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _rank(score: str, member: str) -> Rank:
    return (float(score), int(member[:_SEQ_DIGITS]))


def standing(fields: Sequence[Any], as_of: int) -> Standing:
    """One ``standing_reply`` of eleven fields."""
    call_id, customer, score, member, step, dialect, skey = (_text(f) for f in fields[:7])
    position, ahead_any, ahead_dialect, ahead_skill = (int(f) for f in fields[7:11])
    return Standing(
        call_id=call_id,
        customer_id=customer,
        rank=_rank(score, member),
        step=LadderStep(step),
        dialect=dialect or None,
        skill_key=skey or None,
        position=position,
        ahead_any=ahead_any,
        ahead_dialect=ahead_dialect,
        ahead_skill=ahead_skill,
        as_of=as_of,
    )


def standings(reply: Sequence[Any]) -> tuple[int, list[Standing]]:
    """``{version, standing fields...}`` (``standings.lua``, ``enqueue.lua``)."""
    version = int(reply[0])
    found = [
        standing(reply[i : i + STANDING_FIELDS], version)
        for i in range(1, len(reply), STANDING_FIELDS)
    ]
    return version, found


def changes(reply: Sequence[Any], since: int) -> QueueChanges:
    """``changes.lua``: complete only if nothing after ``since`` was trimmed away
    and the version did not go back (the live state was lost)."""
    generation, version, oldest = _text(reply[0]), int(reply[1]), int(reply[2])
    entries = reply[3:]
    if version == since:
        return QueueChanges(generation, version, ())
    if version < since or oldest > since + 1:
        return QueueChanges(generation, version, (), complete=False)
    # One parse for the whole batch, not one per entry.
    rows = json.loads(f"[{','.join(_text(e) for e in entries)}]")
    parsed = tuple(
        QueueChange(
            version=int(number),
            kind=ChangeKind(kind),
            call_id=member[_SEQ_DIGITS + 1 :],
            customer_id=customer,
            rank=_rank(score, member),
            step=LadderStep(step),
            dialect=dialect or None,
            skill_key=skey or None,
            old_step=LadderStep(old) if old else None,
        )
        for number, kind, score, member, step, old, dialect, skey, customer in rows
    )
    last = parsed[-1].version if parsed else since
    return QueueChanges(generation, last, parsed)


def staffing(reply: Sequence[Any]) -> Staffing:
    """``staffing.lua``: three fields per specialist."""
    views = []
    for i in range(0, len(reply), 3):
        state, fluent, intents = (_text(f) for f in reply[i : i + 3])
        views.append(
            SpecialistView(
                specialist_id="",
                state=SpecialistState(state),
                fluent_dialects=frozenset(json.loads(fluent)),
                call_id=None,
                misses=0,
                # cjson writes an empty array as {}.
                intents=frozenset(json.loads(intents) or ()),
            )
        )
    return staffing_of(views)


def live_calls(reply: Any) -> LiveCalls:
    """``live_calls.lua``: one JSON document (cjson writes an empty array as {})."""
    document = json.loads(_text(reply))
    order, offered, holding = (document[k] or [] for k in ("order", "offered", "holding"))
    return LiveCalls(
        waiting=frozenset(member[_SEQ_DIGITS + 1 :] for member in order),
        offered=frozenset(offered),
        holding=dict(zip(holding[::2], holding[1::2], strict=True)),
    )
