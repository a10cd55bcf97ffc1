"""The labelled scenario suite: detection and false alarms of the default ruleset.

Detection: scams decided ``review`` or stronger. False alarm: a legitimate
operation decided above ``warn``. The figures are printed in the terminal
summary; the thresholds are the release criteria.
"""

from __future__ import annotations

from typing import Any

import pytest

from risk import Decision, RiskEngine
from risk.codec import decode_case

MIN_SCENARIOS = 40
MIN_DETECTION = 0.95
MAX_FALSE_ALARMS = 0.05


def test_scenarios_are_well_formed(scenarios: list[dict[str, Any]]) -> None:
    ids = [s["id"] for s in scenarios]
    assert len(scenarios) >= MIN_SCENARIOS
    assert len(set(ids)) == len(ids), "scenario ids must be unique"
    labels = {s["label"] for s in scenarios}
    assert labels == {"scam", "legit"}
    for s in scenarios:
        assert s.get("description", "").strip(), f"{s['id']} needs a description"
        decode_case(s)  # raises on a malformed scenario


def test_seed_cases_are_present(scenarios: list[dict[str, Any]]) -> None:
    ids = {s["id"] for s in scenarios}
    for required in (
        "seed-protection-plan-safe-account",
        "seed-pension-large-to-son",
        "generous-grandparent-monthly",
        "limit-raise-then-new-payee-in-call",
        "first-time-investment-payment",
    ):
        assert required in ids


def test_detection_and_false_alarms(
    scenarios: list[dict[str, Any]], report_figures: list[str]
) -> None:
    engine = RiskEngine()
    missed: list[str] = []
    false_alarms: list[str] = []
    scams = legit = 0
    for raw in scenarios:
        case = decode_case(raw)
        result = engine.evaluate(case.operation, case.profile, case.session, case.lists, case.now)
        if case.label == "scam":
            scams += 1
            if result.decision < Decision.REVIEW:
                missed.append(f"{case.id} ({result.decision.value})")
        else:
            legit += 1
            if result.decision > Decision.WARN:
                false_alarms.append(f"{case.id} ({result.decision.value})")
    detection = (scams - len(missed)) / scams
    false_alarm_rate = len(false_alarms) / legit
    lines = [
        f"ruleset {engine.ruleset.version}, {scams + legit} scenarios",
        f"detection (scam at review or stronger): {scams - len(missed)}/{scams} = "
        f"{detection:.1%}; missed: {', '.join(missed) or 'none'}",
        f"false alarms (legit above warn): {len(false_alarms)}/{legit} = "
        f"{false_alarm_rate:.1%}; {', '.join(false_alarms) or 'none'}",
    ]
    report_figures.extend(lines)
    print("\n".join(lines))
    assert detection >= MIN_DETECTION, lines[1]
    assert false_alarm_rate <= MAX_FALSE_ALARMS, lines[2]


@pytest.mark.parametrize("label", ["scam", "legit"])
def test_every_flagged_scenario_is_explained(scenarios: list[dict[str, Any]], label: str) -> None:
    """Whatever is flagged carries reasons the specialist and the customer can read."""
    engine = RiskEngine()
    for raw in (s for s in scenarios if s["label"] == label):
        case = decode_case(raw)
        result = engine.evaluate(case.operation, case.profile, case.session, case.lists, case.now)
        if result.decision >= Decision.WARN:
            assert result.reasons, case.id
            for reason in result.reasons:
                assert reason.specialist_text and reason.questions, (case.id, reason.code)
                assert reason.customer_text["zh"] and reason.customer_text["en"]


def test_seed_scam_names_the_scam_to_the_customer(scenarios: list[dict[str, Any]]) -> None:
    raw = next(s for s in scenarios if s["id"] == "seed-protection-plan-safe-account")
    case = decode_case(raw)
    result = RiskEngine().evaluate(case.operation, case.profile, case.session, case.lists, case.now)
    assert result.decision >= Decision.HOLD
    codes = set(result.reason_codes)
    assert {"safe_account_pattern", "typology_protection_plan", "large_amount"} <= codes
    english = " ".join(r.customer_text["en"] for r in result.reasons)
    chinese = " ".join(r.customer_text["zh"] for r in result.reasons)
    assert "safe account" in english and "protection plan" in english
    assert "安全账户" in chinese and "百万保障" in chinese
