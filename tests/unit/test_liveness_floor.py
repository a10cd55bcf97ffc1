"""The floor for an operation whose liveness check did not pass: pure rules."""

from __future__ import annotations

from typing import Any

import risk
from server.operations.liveness import bound_result, not_passed_floor

RULESET = risk.load_default_ruleset()


def _risk(decision: str, *codes: str) -> dict[str, Any]:
    reasons = [
        {"code": c, "specialist_text": c, "customer_text": {}, "questions": []} for c in codes
    ]
    return {"decision": decision, "score": 10, "reasons": reasons, "ruleset_version": "v"}


def test_an_allowed_operation_becomes_a_review_with_the_rulesets_words() -> None:
    floored = not_passed_floor(_risk("allow"), RULESET)
    assert floored["decision"] == "review" and floored["floor"] == "liveness_not_passed"
    (reason,) = floored["reasons"]
    rule = next(r for r in RULESET.rules if r.code == "liveness_failed")
    assert reason["code"] == "liveness_failed"
    assert reason["customer_text"] == dict(rule.reason.customer_text)
    assert reason["questions"] == list(rule.reason.questions)
    assert "not your fault" in reason["customer_text"]["en"]


def test_a_stronger_decision_stays_and_the_engines_own_reason_is_not_repeated() -> None:
    held = not_passed_floor(
        _risk("hold", "liveness_failed", "liveness_failed_large_transfer"), RULESET
    )
    assert held["decision"] == "hold" and "floor" not in held
    assert [r["code"] for r in held["reasons"]] == [
        "liveness_failed",
        "liveness_failed_large_transfer",
    ]
    reviewed = not_passed_floor(_risk("review", "new_payee"), RULESET)
    assert reviewed["decision"] == "review"
    assert [r["code"] for r in reviewed["reasons"]] == ["new_payee", "liveness_failed"]


def test_a_ruleset_without_the_rule_still_names_it() -> None:
    class NoRules:
        rules = ()

    floored = not_passed_floor(_risk("warn"), NoRules())  # type: ignore[arg-type]
    assert floored["decision"] == "review"
    assert floored["reasons"][0]["code"] == "liveness_failed"


class _Op:
    def __init__(self, liveness: dict[str, Any] | None) -> None:
        self.risk = (
            {"decision": "allow", "liveness": liveness} if liveness else {"decision": "allow"}
        )


def test_what_execution_is_told_of_the_check_it_waited_for() -> None:
    assert bound_result(_Op({"status": "passed"})) == "passed"  # type: ignore[arg-type]
    assert bound_result(_Op({"status": "failed"})) == "failed"  # type: ignore[arg-type]
    assert bound_result(_Op({"status": "expired"})) == "failed"  # type: ignore[arg-type]
    assert bound_result(_Op({"status": "pending"})) is None  # type: ignore[arg-type]
    assert bound_result(_Op(None)) is None  # type: ignore[arg-type]
