"""Video integrity and the account-takeover sequence as features rules can test.

The media node's analysis reaches the engine as data (``CallSession.video_integrity``).
Unknown integrity (no analysis, or direct media) is the value ``unknown``, not a
missing fact: a call without analysis is decided by the other rules and the
engine's fail-safes, exactly as before analysis existed. It never counts in the
customer's favour either: no rule lowers a score for ``ok``.

A change of the mobile number that receives SMS codes (``contact_change``),
followed within days by a new payee, a limit raise or a large transfer, is the
classic takeover order: whoever controls the number now receives the codes.
"""

from __future__ import annotations

from risk.features import FeatureContext, _hours_since, feature

#: the signal codes the media node reports (anything else counts as "suspect")
VIDEO_SIGNALS = frozenset(
    {"video_frozen", "video_looped", "frame_timing_anomaly", "face_absent", "multiple_faces"}
)
_STATUSES = frozenset({"ok", "suspect", "unknown"})
_LIVENESS = frozenset({"passed", "failed"})
_CONTACT_CHANGE = frozenset({"contact_change"})
_NO_SIGNALS: frozenset[str] = frozenset()


@feature("str", "video integrity of the call: 'ok', 'suspect' or 'unknown' (no analysis)")
def video_status(ctx: FeatureContext) -> object:
    integrity = ctx.need_session().video_integrity
    if integrity is None:
        return "unknown"
    status = integrity.status.casefold()
    if status not in _STATUSES:
        return "suspect"  # a status nobody defined is not a clean bill
    if status == "ok" and integrity.signals:
        return "suspect"  # active signals outweigh a stale summary
    return status


@feature("set", "active video signal codes (empty when none or unknown)", members=VIDEO_SIGNALS)
def video_signals(ctx: FeatureContext) -> object:
    integrity = ctx.need_session().video_integrity
    if integrity is None or not integrity.signals:
        return _NO_SIGNALS
    return frozenset(s.casefold() for s in integrity.signals)


@feature("str", "latest liveness challenge in the call: 'passed', 'failed' or 'none'")
def liveness_result(ctx: FeatureContext) -> object:
    integrity = ctx.need_session().video_integrity
    if integrity is None or integrity.liveness is None:
        return "none"
    result = integrity.liveness.casefold()
    return result if result in _LIVENESS else "failed"  # unreadable is not a pass


@feature(
    "number", "hours since the SMS phone number was changed (event or in call); inf if none", cost=2
)
def hours_since_contact_change(ctx: FeatureContext) -> object:
    return _hours_since(ctx, _CONTACT_CHANGE)
