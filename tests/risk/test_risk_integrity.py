"""Video integrity and account-takeover sequences as risk inputs (issues 14 and 17).

A suspect video or a failed liveness challenge makes a transfer or a limit change
at least a review, with a reason named after each signal; a large amount after a
failed liveness is held. Unknown integrity changes nothing: the other rules and
the fail-safes decide. A changed SMS phone number followed by a new payee, a
limit change or a large transfer raises the decision; the whole sequence holds.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from risk import (
    Decision,
    Operation,
    PriorOperation,
    RecentEvent,
    RiskEngine,
    VideoIntegrity,
)
from risk.codec import decode_case

SIGNALS = ["video_frozen", "video_looped", "frame_timing_anomaly", "face_absent", "multiple_faces"]
NEW_KINDS = [
    "passbook_statement",
    "loss_report",
    "replacement",
    "contact_change",
    "pension_certification",
    "certificate",
]


@pytest.fixture(scope="module")
def engine() -> RiskEngine:
    return RiskEngine()


def _limit(new_limit: str) -> Operation:
    return Operation(
        kind="limit_change", channel="mobile", new_limit=Decimal(new_limit), currency="CNY"
    )


def _texts_are_complete(result: Any, code: str) -> None:
    reason = next(r for r in result.reasons if r.code == code)
    assert reason.questions and reason.specialist_text
    assert reason.customer_text["zh"] and reason.customer_text["en"]


@pytest.mark.parametrize("signal", SIGNALS)
@pytest.mark.parametrize("kind", ["transfer", "limit_change"])
def test_each_signal_makes_a_review_named_after_it(
    engine: RiskEngine, kit: Any, signal: str, kind: str
) -> None:
    op = kit.transfer() if kind == "transfer" else _limit("5000")
    clean = kit.session(video_integrity=VideoIntegrity("ok", (), "passed"))
    assert (
        engine.evaluate(op, kit.profile(), clean, kit.lists(), kit.now).decision is Decision.ALLOW
    )
    session = kit.session(video_integrity=VideoIntegrity("suspect", (signal,)))
    result = engine.evaluate(op, kit.profile(), session, kit.lists(), kit.now)
    assert result.decision >= Decision.REVIEW
    assert signal in result.reason_codes
    _texts_are_complete(result, signal)


def test_a_suspect_status_without_a_known_signal_still_reviews(
    engine: RiskEngine, kit: Any
) -> None:
    session = kit.session(video_integrity=VideoIntegrity("suspect", ("audio_mismatch",)))
    result = engine.evaluate(kit.transfer(), kit.profile(), session, kit.lists(), kit.now)
    assert result.decision >= Decision.REVIEW and "video_suspect" in result.reason_codes


def test_failed_liveness_reviews_and_holds_a_large_amount(engine: RiskEngine, kit: Any) -> None:
    session = kit.session(video_integrity=VideoIntegrity("ok", (), "failed"))
    small = engine.evaluate(kit.transfer(), kit.profile(), session, kit.lists(), kit.now)
    assert small.decision is Decision.REVIEW and "liveness_failed" in small.reason_codes
    _texts_are_complete(small, "liveness_failed")
    large = kit.transfer(amount=Decimal("60000"))
    held = engine.evaluate(
        large, kit.profile(balance=Decimal("900000")), session, kit.lists(), kit.now
    )
    assert held.decision >= Decision.HOLD
    assert {"liveness_failed", "liveness_failed_large_transfer"} <= set(held.reason_codes)
    limit = engine.evaluate(_limit("200000"), kit.profile(), session, kit.lists(), kit.now)
    assert limit.decision >= Decision.HOLD and "liveness_failed_high_limit" in limit.reason_codes


def test_ok_integrity_never_lowers_a_decision(engine: RiskEngine, kit: Any) -> None:
    args = (kit.profile(), kit.lists(), kit.now)
    op = kit.to_stranger("60000")
    unknown = engine.evaluate(op, args[0], kit.session(), *args[1:])
    ok = engine.evaluate(
        op, args[0], kit.session(video_integrity=VideoIntegrity("ok", (), "passed")), *args[1:]
    )
    assert ok.decision == unknown.decision >= Decision.REVIEW


def test_unknown_integrity_follows_the_fail_safes(engine: RiskEngine, kit: Any) -> None:
    unknown = kit.session(video_integrity=VideoIntegrity("unknown"))
    routine = engine.evaluate(kit.transfer(), kit.profile(), unknown, kit.lists(), kit.now)
    assert routine.decision is Decision.ALLOW  # no analysis is not itself a finding
    # ...but it is no excuse either: a fact the rules need still fails safe.
    large = kit.to_stranger("60000")
    result = engine.evaluate(large, kit.profile(age=None), unknown, kit.lists(), kit.now)
    assert result.decision is Decision.HOLD
    assert result.reasons[-1].code == "feature_unavailable"
    # An unreadable liveness result is not a pass.
    odd = kit.session(video_integrity=VideoIntegrity("ok", (), "garbled"))
    assert engine.evaluate(kit.transfer(), kit.profile(), odd, kit.lists(), kit.now).decision >= (
        Decision.REVIEW
    )


def test_a_suspect_video_names_a_scam(engine: RiskEngine, kit: Any) -> None:
    replayed = kit.session(
        stated_reason="", video_integrity=VideoIntegrity("suspect", ("video_looped",))
    )
    result = engine.evaluate(kit.to_stranger("8000"), kit.profile(), replayed, kit.lists(), kit.now)
    assert result.typology == "account_takeover"
    prompted = kit.session(
        stated_reason="付装修的钱", video_integrity=VideoIntegrity("suspect", ("multiple_faces",))
    )
    result = engine.evaluate(
        kit.to_stranger("15000"), kit.profile(), prompted, kit.lists(), kit.now
    )
    assert result.typology == "coached_story"  # someone beside the customer is prompting


def _changed(kit: Any, hours: float) -> Any:
    return kit.profile(
        recent_events=(RecentEvent("contact_change", kit.now - timedelta(hours=hours)),)
    )


def test_contact_change_then_large_transfer_to_a_new_payee_holds(
    engine: RiskEngine, kit: Any
) -> None:
    profile = replace(_changed(kit, 20), balance=Decimal("500000"))
    result = engine.evaluate(kit.to_stranger("60000"), profile, kit.session(), kit.lists(), kit.now)
    assert result.decision >= Decision.HOLD
    assert "contact_change_new_payee_large" in result.reason_codes
    assert result.typology == "account_takeover"
    _texts_are_complete(result, "contact_change_new_payee_large")
    # The same transfer with no contact change has no takeover reason.
    plain = engine.evaluate(
        kit.to_stranger("60000"),
        replace(profile, recent_events=()),
        kit.session(),
        kit.lists(),
        kit.now,
    )
    assert not {c for c in plain.reason_codes if "contact_change" in c}


def test_contact_change_in_the_call_then_a_new_payee_reviews(engine: RiskEngine, kit: Any) -> None:
    earlier = (PriorOperation("contact_change", kit.now - timedelta(minutes=5), "executed"),)
    session = kit.session(earlier_operations=earlier)
    result = engine.evaluate(kit.to_stranger("3000"), kit.profile(), session, kit.lists(), kit.now)
    assert result.decision >= Decision.REVIEW
    assert "new_payee_after_contact_change" in result.reason_codes
    # To the long-known daughter the same call is routine.
    usual = engine.evaluate(kit.transfer(), kit.profile(), session, kit.lists(), kit.now)
    assert usual.decision <= Decision.WARN


def test_contact_change_then_a_limit_change_reviews(engine: RiskEngine, kit: Any) -> None:
    result = engine.evaluate(
        _limit("20000"), _changed(kit, 30), kit.session(), kit.lists(), kit.now
    )
    assert result.decision >= Decision.REVIEW
    assert "limit_raise_after_contact_change" in result.reason_codes
    # Beyond the window it is history.
    old = engine.evaluate(
        _limit("20000"), _changed(kit, 24 * 30), kit.session(), kit.lists(), kit.now
    )
    assert "limit_raise_after_contact_change" not in old.reason_codes


def test_contact_change_then_a_large_transfer_to_a_known_payee_reviews(
    engine: RiskEngine, kit: Any
) -> None:
    profile = replace(_changed(kit, 10), balance=Decimal("500000"))
    result = engine.evaluate(
        kit.transfer(amount=Decimal("60000")), profile, kit.session(), kit.lists(), kit.now
    )
    assert result.decision >= Decision.REVIEW
    assert "large_transfer_after_contact_change" in result.reason_codes


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_new_kinds_are_consulted(engine: RiskEngine, kit: Any, kind: str) -> None:
    op = Operation(kind=kind)
    routine = kit.session(stated_reason="办一下业务")
    assert (
        engine.evaluate(op, kit.profile(), routine, kit.lists(), kit.now).decision is Decision.ALLOW
    )
    sharing = kit.session(stated_reason="客服正在和我共享屏幕，让我照着做")
    result = engine.evaluate(op, kit.profile(), sharing, kit.lists(), kit.now)
    assert result.decision >= Decision.REVIEW and "remote_control_at_counter" in result.reason_codes
    scam = kit.session(stated_reason="公安局的警官说我涉嫌洗钱，要配合调查")
    result = engine.evaluate(op, kit.profile(), scam, kit.lists(), kit.now)
    assert result.decision >= Decision.REVIEW and result.typology == "authority_impersonation"


def test_takeover_sequences_at_the_counter(engine: RiskEngine, kit: Any) -> None:
    device = kit.profile(recent_events=(RecentEvent("new_device", kit.now - timedelta(hours=3)),))
    result = engine.evaluate(
        Operation(kind="contact_change"), device, kit.session(), kit.lists(), kit.now
    )
    assert (
        result.decision >= Decision.REVIEW and "takeover_sequence_at_counter" in result.reason_codes
    )
    reset = Operation(kind="password_reset", channel="mobile")
    result = engine.evaluate(reset, _changed(kit, 5), kit.session(), kit.lists(), kit.now)
    assert (
        result.decision >= Decision.REVIEW and "reset_after_contact_change" in result.reason_codes
    )
    # A loss report followed by a replacement, nothing else: routine.
    lost = (PriorOperation("loss_report", kit.now - timedelta(minutes=10), "executed"),)
    result = engine.evaluate(
        Operation(kind="replacement"),
        kit.profile(),
        kit.session(earlier_operations=lost),
        kit.lists(),
        kit.now,
    )
    assert result.decision is Decision.ALLOW


def test_the_backtest_format_carries_integrity(kit: Any) -> None:
    raw = {
        "now": kit.now.isoformat(),
        "operation": {"kind": "transfer", "amount": "100", "currency": "CNY"},
        "session": {
            "stated_reason": "",
            "video_integrity": {
                "status": "suspect",
                "signals": ["video_frozen"],
                "liveness": "failed",
            },
        },
    }
    case = decode_case(raw)
    assert case.session is not None
    assert case.session.video_integrity == VideoIntegrity("suspect", ("video_frozen",), "failed")
    raw["session"] = {"stated_reason": ""}
    case = decode_case(raw)
    assert case.session is not None and case.session.video_integrity is None
