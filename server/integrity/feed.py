"""How a media node in its own process shares each call's analysis with the servers.

The node (``cloudbranch media-node``) analyses the customer video of the calls it
relays; the servers answer ``GET /api/v1/calls/{id}/integrity``, tell the desk,
give the risk engine its input and verify liveness challenges. Between them is
one Redis stream per call, ``cb:integrity:call:{call_id}``: every entry is one
step of the call's :class:`~signaling.integrity.state.CallIntegrity` (a sample's
findings, or the analysis stopping), so a server that applies the entries in
order holds the same state as the node, samples included (the liveness checks
read them). Calls with recent entries are in the sorted set ``cb:integrity:calls``
(score: the last entry's time), which is how a server finds the streams to read.

Why a stream and not pub/sub: a server reads each stream from the last entry it
applied (``XREAD``), so an entry published while it was disconnected, busy or
restarting is read when it is back, not lost. A stream is capped (``MAXLEN``)
and expires after its call goes quiet. Every entry carries the call's whole set
of active signals, so even entries trimmed away unread leave a server with the
right status and active signals from the next entry on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from signaling.integrity.state import CallIntegrity, Sample

CALLS_KEY = "cb:integrity:calls"
#: Entries kept per call: a few minutes at 3 samples a second (the state keeps as many).
STREAM_MAXLEN = 600
#: A quiet call's stream and its place in CALLS_KEY go after this long.
STREAM_TTL_S = 3600
#: Calls whose last entry is older than this are no longer read.
ACTIVE_WINDOW_S = 120.0

Signals = tuple[tuple[str, float, float, str], ...]


def stream_key(call_id: str) -> str:
    return f"cb:integrity:call:{call_id}"


def call_of(stream: str) -> str:
    return stream.removeprefix("cb:integrity:call:")


def analysed_entry(at: float, signals: Signals, sample: Sample | None) -> dict[str, str]:
    entry = {"at": repr(at), "on": "1", "signals": json.dumps(signals)}
    if sample is not None:
        entry["sample"] = json.dumps([sample.faces, sample.colour])
    return entry


def stopped_entry(at: float) -> dict[str, str]:
    return {"at": repr(at), "on": "0"}


def apply_entry(state: CallIntegrity, fields: Mapping[str, Any]) -> bool:
    """One entry applied to a server's copy of the state; True when its key changed.

    Only the analysis is applied: the latest liveness result is the server's own
    (it verifies the challenges), and stays as it is.
    """
    at = float(fields["at"])
    if fields.get("on") != "1":
        return state.stop(at)
    signals: Signals = tuple(
        (str(code), float(since), float(confidence), str(detail))
        for code, since, confidence, detail in json.loads(fields["signals"])
    )
    sample = None
    if fields.get("sample"):
        faces, colour = json.loads(fields["sample"])
        sample = Sample(
            at,
            tuple(tuple(float(v) for v in box) for box in faces),  # type: ignore[misc]
            tuple(float(v) for v in colour) if colour else None,  # type: ignore[arg-type]
        )
    return state.update(at, signals, sample)
