"""Engine behaviour with the default ruleset: rules, mitigations, lists, shadow, reload."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from risk import (
    AllowListEntry,
    Decision,
    KnownPayee,
    PriorOperation,
    RecentEvent,
    RiskEngine,
    RulesetError,
    RuleSnooze,
    load_default_ruleset,
)
from risk.ruleset import parse_ruleset

DEFAULT_YAML = (Path(__file__).parents[2] / "risk" / "rulesets" / "default.yaml").read_text(
    encoding="utf-8"
)


@pytest.fixture(scope="module")
def engine() -> RiskEngine:
    return RiskEngine()


def decide(engine: RiskEngine, kit: Any, op: Any = None, **parts: Any) -> Any:
    return engine.evaluate(
        op if op is not None else kit.transfer(),
        parts.get("profile", kit.profile()),
        parts.get("session", kit.session()),
        parts.get("lists", kit.lists()),
        parts.get("now", kit.now),
    )


def test_decisions_are_ordered() -> None:
    order = [Decision.ALLOW, Decision.WARN, Decision.REVIEW, Decision.HOLD, Decision.BLOCK]
    assert sorted(reversed(order)) == order
    assert max(Decision.WARN, Decision.HOLD) is Decision.HOLD
    assert Decision.REVIEW >= Decision.REVIEW > Decision.WARN
    assert Decision.BLOCK == "block"  # serialises as its plain value
    assert not Decision.HOLD < "review"
    assert Decision.HOLD > "review"  # by rank, not alphabetically
    with pytest.raises(TypeError):
        _ = Decision.HOLD < "maybe"


def test_routine_transfer_to_family_is_allowed(engine: RiskEngine, kit: Any) -> None:
    result = decide(engine, kit)
    assert result.decision is Decision.ALLOW
    assert result.reasons == ()
    assert {m.code for m in result.mitigations} == {"long_known_payee", "family_payee"}
    assert result.unknown_features == ()
    assert result.ruleset_version == engine.ruleset.version


def test_large_amount_threshold_is_configurable(kit: Any) -> None:
    lowered = parse_ruleset(
        DEFAULT_YAML.replace("large_amount_cny: 50000", "large_amount_cny: 20000")
    )
    op = kit.transfer(amount=Decimal("30000"))
    assert "large_amount" not in decide(RiskEngine(), kit, op).reason_codes
    assert "large_amount" in decide(RiskEngine(lowered), kit, op).reason_codes


def test_amount_relative_to_habits(engine: RiskEngine, kit: Any) -> None:
    # The customer's 95th percentile is 2,000: 7,000 is large for her, 1,500 is not.
    assert (
        "large_for_customer"
        in decide(engine, kit, kit.transfer(amount=Decimal("7000"))).reason_codes
    )
    assert (
        "large_for_customer"
        not in decide(engine, kit, kit.transfer(amount=Decimal("1500"))).reason_codes
    )


def test_thin_history_uses_the_age_band(engine: RiskEngine, kit: Any) -> None:
    from risk import HabitProfile

    thin = kit.profile(habits=HabitProfile.from_transactions([], as_of=kit.now), age=82)
    result = decide(engine, kit, kit.to_stranger("6000"), profile=thin)
    # 6,000 is 1.5x the 80+ band's p95 (4,000): not "large for customer", but a new payee.
    assert "new_payee" in result.reason_codes
    assert "large_for_customer" not in result.reason_codes
    young = kit.profile(habits=HabitProfile.from_transactions([], as_of=kit.now), age=50)
    result = decide(engine, kit, kit.to_stranger("20000"), profile=young)
    assert "large_for_customer" not in result.reason_codes  # 59-and-under band: p95 12,000
    result = decide(
        engine,
        kit,
        kit.to_stranger("20000"),
        profile=kit.profile(habits=HabitProfile.from_transactions([], as_of=kit.now), age=85),
    )
    assert "large_for_customer" in result.reason_codes  # 5x the 80+ band's p95
    assert result.decision >= Decision.REVIEW


def test_new_payee_and_safe_account_pattern(engine: RiskEngine, kit: Any) -> None:
    new = decide(engine, kit, kit.to_stranger("1000"))
    assert "new_payee" in new.reason_codes
    own_new = kit.transfer(
        payee_account="6217 0033 1234 5678", payee_name="王秀英", payee_bank="CCB"
    )
    result = decide(engine, kit, own_new)
    assert "safe_account_pattern" in result.reason_codes
    assert result.decision >= Decision.REVIEW
    reason = next(r for r in result.reasons if r.code == "safe_account_pattern")
    assert "safe account" in reason.customer_text["en"]
    assert "安全账户" in reason.customer_text["zh"]
    assert len(reason.questions) >= 2
    # The same own-name account at another bank, known for years, is not the pattern.
    known = kit.profile(
        known_payees=(KnownPayee("6217 0033 1234 5678", date(2019, 1, 1), "王秀英"),)
    )
    assert "safe_account_pattern" not in decide(engine, kit, own_new, profile=known).reason_codes


def test_blocked_payee_and_phone_block(engine: RiskEngine, kit: Any) -> None:
    blocked = kit.transfer(payee_account=kit.blocked.replace(" ", ""), amount=Decimal("100"))
    result = decide(engine, kit, blocked)
    assert result.decision is Decision.BLOCK
    assert "blocked_payee" in result.reason_codes
    called = kit.session(contact_phones=("+86 170 0000 1234",))
    assert decide(engine, kit, session=called).decision is Decision.BLOCK


def test_velocity_over_24h(engine: RiskEngine, kit: Any) -> None:
    earlier = tuple(
        PriorOperation("transfer", kit.now - timedelta(minutes=m), "held", Decimal("18000"), "CNY")
        for m in (5, 15, 25)
    )
    result = decide(
        engine, kit, kit.to_stranger("3000"), session=kit.session(earlier_operations=earlier)
    )
    assert {"velocity_count", "velocity_sum"} & set(result.reason_codes)
    assert result.decision >= Decision.REVIEW  # also a retry after a hold


def test_night_hours(engine: RiskEngine, kit: Any) -> None:
    night = kit.session(local_time=kit.session().local_time.replace(hour=1))
    op = kit.to_stranger("5000")
    assert "night_transfer" in decide(engine, kit, op, session=night).reason_codes
    assert "night_transfer" not in decide(engine, kit, op).reason_codes


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("limit_change", "limit_raise_then_new_payee"),
        ("password_reset", "password_reset_then_large"),
        ("time_deposit_break", "deposit_break_then_transfer"),
    ],
)
def test_sequences_before_a_large_transfer(
    engine: RiskEngine, kit: Any, event: str, code: str
) -> None:
    op = kit.to_stranger("20000")
    recent = kit.profile(recent_events=(RecentEvent(event, kit.now - timedelta(hours=20)),))
    long_ago = kit.profile(recent_events=(RecentEvent(event, kit.now - timedelta(days=30)),))
    result = decide(engine, kit, op, profile=recent)
    assert code in result.reason_codes
    assert result.decision >= Decision.REVIEW
    assert code not in decide(engine, kit, op, profile=long_ago).reason_codes
    # The same step earlier in this call counts too.
    in_call = kit.session(
        earlier_operations=(PriorOperation(event, kit.now - timedelta(minutes=10), "executed"),)
    )
    assert code in decide(engine, kit, op, session=in_call).reason_codes


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("警察说要把钱转到安全账户", "typology_safe_account"),
        ("move it to a safe account", "typology_safe_account"),
        ("检察院说我涉嫌洗钱", "typology_authority"),
        ("The police said my account is frozen", "typology_authority"),
        ("微信百万保障要关闭", "typology_protection_plan"),
        ("cancel the service or they charge me", "typology_protection_plan"),
        ("养老项目保本保息", "typology_investment"),
        ("guaranteed returns in a pension scheme", "typology_investment"),
        ("孙子出车祸了", "typology_family_emergency"),
        ("my grandson was arrested, do not tell anyone", "typology_family_emergency"),
    ],
)
def test_typology_keywords(engine: RiskEngine, kit: Any, reason: str, code: str) -> None:
    # Even to the long-known daughter, except a family emergency: money paid to a
    # long-known family account reaches the real relative (see the next test).
    op = kit.to_stranger("1000") if code == "typology_family_emergency" else kit.transfer()
    result = decide(engine, kit, op, session=kit.session(stated_reason=reason))
    assert code in result.reason_codes
    assert result.decision >= Decision.REVIEW


@pytest.mark.parametrize(
    "reason",
    ["孙子出车祸了，住院要交押金", "my son changed his number and asked for help with rent"],
)
def test_family_emergency_paid_to_long_known_family_is_not_the_scam(
    engine: RiskEngine, kit: Any, reason: str
) -> None:
    session = kit.session(stated_reason=reason)
    to_daughter = decide(engine, kit, kit.transfer(), session=session)
    assert "typology_family_emergency" not in to_daughter.reason_codes
    assert to_daughter.decision <= Decision.WARN
    to_new_account = decide(engine, kit, kit.to_stranger("3000"), session=session)
    assert to_new_account.decision >= Decision.REVIEW
    assert to_new_account.typology == "family_emergency"


def test_keywords_match_whole_english_words(engine: RiskEngine, kit: Any) -> None:
    result = decide(engine, kit, session=kit.session(stated_reason="insurance policy premium"))
    assert not any(code.startswith("typology_") for code in result.reason_codes)


def test_age_weighting(kit: Any) -> None:
    engine = RiskEngine()
    op = kit.to_stranger("7000")
    young = decide(engine, kit, op, profile=kit.profile(age=45))
    old = decide(engine, kit, op, profile=kit.profile(age=80))
    assert old.score > young.score > 0


def test_allow_list_lowers_and_expires(engine: RiskEngine, kit: Any) -> None:
    op = kit.to_stranger("7000")
    plain = decide(engine, kit, op)
    entry = AllowListEntry(
        "C9001", kit.stranger, kit.now + timedelta(days=30), "verified in branch"
    )
    allowed = decide(engine, kit, op, lists=kit.lists(allow_list=(entry,)))
    expired = AllowListEntry(
        "C9001", kit.stranger, kit.now - timedelta(days=1), "verified in branch"
    )
    lapsed = decide(engine, kit, op, lists=kit.lists(allow_list=(expired,)))
    other = AllowListEntry("C0000", kit.stranger, kit.now + timedelta(days=30), "someone else")
    foreign = decide(engine, kit, op, lists=kit.lists(allow_list=(other,)))
    assert allowed.score < plain.score and allowed.decision <= plain.decision
    assert "allow_listed_payee" in {m.code for m in allowed.mitigations}
    assert lapsed.score == plain.score == foreign.score


def test_allow_list_never_lowers_a_floor(engine: RiskEngine, kit: Any) -> None:
    entry = AllowListEntry("C9001", kit.stranger, kit.now + timedelta(days=30), "verified")
    scam_reason = kit.session(stated_reason="公安让我转到安全账户")
    result = decide(
        engine,
        kit,
        kit.to_stranger("5000"),
        session=scam_reason,
        lists=kit.lists(allow_list=(entry,)),
    )
    assert result.decision >= Decision.HOLD


def test_entries_need_a_reason(kit: Any) -> None:
    with pytest.raises(ValueError, match="reason"):
        AllowListEntry("C9001", kit.stranger, kit.now, " ")
    with pytest.raises(ValueError, match="reason"):
        RuleSnooze("night_transfer", kit.now, "")


def test_snooze_switches_a_rule_off_until_expiry(engine: RiskEngine, kit: Any) -> None:
    op = kit.to_stranger("1000")
    snooze = RuleSnooze("new_payee", kit.now + timedelta(hours=1), "payee book migration")
    snoozed = decide(engine, kit, op, lists=kit.lists(snoozes=(snooze,)))
    assert "new_payee" not in snoozed.reason_codes
    assert snoozed.snoozed == ("new_payee",)
    expired = RuleSnooze("new_payee", kit.now - timedelta(hours=1), "payee book migration")
    assert "new_payee" in decide(engine, kit, op, lists=kit.lists(snoozes=(expired,))).reason_codes
    elsewhere = RuleSnooze("new_payee", kit.now + timedelta(hours=1), "one customer", "C0000")
    assert (
        "new_payee" in decide(engine, kit, op, lists=kit.lists(snoozes=(elsewhere,))).reason_codes
    )


def test_hard_rules_cannot_be_snoozed(engine: RiskEngine, kit: Any) -> None:
    snooze = RuleSnooze("blocked_payee", kit.now + timedelta(days=1), "attempt")
    op = kit.transfer(payee_account=kit.blocked)
    result = decide(engine, kit, op, lists=kit.lists(snoozes=(snooze,)))
    assert result.decision is Decision.BLOCK
    assert result.snoozed == ()


def test_limit_change_rules(engine: RiskEngine, kit: Any) -> None:
    from risk import Operation

    small = Operation(
        kind="limit_change", channel="mobile", new_limit=Decimal("20000"), currency="CNY"
    )
    large = Operation(
        kind="limit_change", channel="mobile", new_limit=Decimal("200000"), currency="CNY"
    )
    assert decide(engine, kit, small).decision is Decision.ALLOW
    assert "limit_raise_large" in decide(engine, kit, large).reason_codes
    reset = kit.profile(
        recent_events=(RecentEvent("password_reset", kit.now - timedelta(hours=3)),)
    )
    assert decide(engine, kit, large, profile=reset).decision >= Decision.REVIEW


def test_other_operation_kinds_pass(engine: RiskEngine, kit: Any) -> None:
    from risk import Operation

    assert decide(engine, kit, Operation(kind="balance_inquiry")).decision is Decision.ALLOW


def test_takeover_order_stops_an_operation_that_moves_no_money(
    engine: RiskEngine, kit: Any
) -> None:
    """SMS number changed, then a new device: reviewed even for a balance inquiry;
    either sign alone is not enough."""
    from risk import Operation

    inquiry = Operation(kind="balance_inquiry")
    changed = RecentEvent("contact_change", kit.now - timedelta(hours=20))
    device = RecentEvent("new_device", kit.now - timedelta(hours=2))
    both = decide(engine, kit, inquiry, profile=kit.profile(recent_events=(changed, device)))
    assert both.decision is Decision.REVIEW
    assert "takeover_signs_at_counter" in both.reason_codes
    assert both.typology == "account_takeover"
    for alone in (changed, device):
        result = decide(engine, kit, inquiry, profile=kit.profile(recent_events=(alone,)))
        assert result.decision is Decision.ALLOW


def test_specialist_text_is_rendered_with_values(engine: RiskEngine, kit: Any) -> None:
    result = decide(engine, kit, kit.to_stranger("60000"))
    text = next(r.specialist_text for r in result.reasons if r.code == "large_amount")
    assert text == "Large transfer: 60000 CNY."
    # No account numbers or names in any text the engine produces.
    for reason in (*result.reasons, *result.mitigations):
        assert kit.stranger.replace(" ", "") not in reason.specialist_text.replace(" ", "")
        assert "张伟" not in reason.specialist_text


def test_foreign_currency_is_converted(engine: RiskEngine, kit: Any) -> None:
    usd = decide(engine, kit, kit.to_stranger("8000", currency="USD"))  # about 57,600 CNY
    assert "large_amount" in usd.reason_codes
    unknown = decide(engine, kit, kit.to_stranger("100", currency="XYZ"))
    assert unknown.decision is Decision.HOLD  # amount unknowable: hold, never allow
    assert "amount_cny" in unknown.unknown_features


def test_shadow_is_reported_not_enforced(kit: Any) -> None:
    strict = parse_ruleset(
        DEFAULT_YAML.replace("name: default", "name: strict").replace(
            "large_amount_cny: 50000", "large_amount_cny: 500"
        )
    )
    engine = RiskEngine(shadow=strict)
    op = kit.transfer(amount=Decimal("1000"))
    result = decide(engine, kit, op)
    assert result.decision is Decision.ALLOW
    assert result.shadow is not None
    assert result.shadow.ruleset_version.startswith("strict@")
    assert "large_amount" in result.shadow.reason_codes
    engine.set_shadow(None)
    assert decide(engine, kit, op).shadow is None


def test_reload_swaps_and_invalid_reload_keeps_the_old_ruleset(kit: Any, tmp_path: Path) -> None:
    engine = RiskEngine()
    before = engine.ruleset
    changed = tmp_path / "strict.yaml"
    changed.write_text(
        DEFAULT_YAML.replace("large_amount_cny: 50000", "large_amount_cny: 500"), encoding="utf-8"
    )
    engine.reload(changed)
    assert engine.ruleset.version != before.version
    assert "large_amount" in decide(engine, kit).reason_codes

    broken = DEFAULT_YAML.replace("when: {payee_blocked: true}", "when: {payee_blokced: true}")
    with pytest.raises(RulesetError) as info:
        engine.reload(broken)
    message = str(info.value)
    assert "rule 'blocked_payee'" in message and "payee_blokced" in message
    assert engine.ruleset.version != before.version  # the strict one is still live
    assert "large_amount" in decide(engine, kit).reason_codes


def test_reload_is_atomic_under_concurrent_evaluation(kit: Any) -> None:
    """Evaluations during reloads always see one whole ruleset, never a mix."""
    a = load_default_ruleset()
    b = parse_ruleset(
        DEFAULT_YAML.replace("name: default", "name: other").replace(
            "large_amount_cny: 50000", "large_amount_cny: 500"
        )
    )
    engine = RiskEngine(a)
    op = kit.transfer(amount=Decimal("1000"))
    seen: list[tuple[str, bool]] = []
    stop = threading.Event()

    def evaluate() -> None:
        while not stop.is_set():
            r = decide(engine, kit, op)
            seen.append((r.ruleset_version, "large_amount" in r.reason_codes))

    worker = threading.Thread(target=evaluate)
    worker.start()
    for i in range(200):
        engine.reload(b if i % 2 == 0 else a)
    stop.set()
    worker.join()
    assert seen
    for version, large in seen:
        assert large == version.startswith("other@")


def test_evaluation_is_pure(engine: RiskEngine, kit: Any) -> None:
    profile, session, lists = kit.profile(), kit.session(), kit.lists()
    op = kit.to_stranger("30000")
    first = engine.evaluate(op, profile, session, lists, kit.now)
    second = engine.evaluate(op, profile, session, lists, kit.now)
    assert first == second
    assert profile == kit.profile() and session == kit.session() and lists == kit.lists()


def test_usage_example_in_the_package_docstring_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import textwrap

    import risk

    assert risk.__doc__ is not None
    example = textwrap.dedent(risk.__doc__.split("Usage::")[1].split("``None``")[0])
    assert 8 <= len([line for line in example.splitlines() if line.strip()]) <= 16
    exec(compile(example, "risk/__init__.py docstring", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("block") and "safe_account_pattern" in out
