"""Ruleset files: validation messages name the rule and the problem; versions are content hashes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from risk import FEATURES, RulesetError, load_default_ruleset, load_ruleset, parse_ruleset

DEFAULT_PATH = Path(__file__).parents[2] / "risk" / "rulesets" / "default.yaml"
DEFAULT_YAML = DEFAULT_PATH.read_text(encoding="utf-8")


def _with_rule(rule: str) -> str:
    """The default ruleset with one more rule appended (YAML list item text)."""
    return DEFAULT_YAML.rstrip() + "\n" + rule


GOOD_RULE = """
  - code: extra_rule
    description: extra
    applies_to: [transfer]
    when: {amount_cny: {ge: 1}}
    points: 5
    specialist_text: extra
    customer_text: {zh: 额外, en: extra}
    questions: ["why?"]
"""


def test_default_ruleset_loads_and_covers_the_required_rules() -> None:
    ruleset = load_default_ruleset()
    codes = {r.code for r in ruleset.rules}
    required = {
        "large_amount",
        "large_for_customer",
        "new_payee",
        "safe_account_pattern",
        "blocked_payee",
        "blocked_phone",
        "velocity_count",
        "velocity_sum",
        "night_transfer",
        "limit_raise_then_new_payee",
        "password_reset_then_large",
        "deposit_break_then_transfer",
        "typology_safe_account",
        "typology_authority",
        "typology_protection_plan",
        "typology_investment",
        "typology_family_emergency",
        "long_known_payee",
        "family_payee",
        "allow_listed_payee",
    }
    assert required <= codes
    assert ruleset.large_amount_cny == 50000
    assert [w.min_age for w in ruleset.age_weights] == [60, 75]
    assert re.fullmatch(r"default@[0-9a-f]{16}", ruleset.version)


def test_version_is_a_content_hash() -> None:
    a = parse_ruleset(DEFAULT_YAML)
    reformatted = parse_ruleset(yaml.safe_dump(yaml.safe_load(DEFAULT_YAML), allow_unicode=True))
    assert a.version == reformatted.version  # layout and comments do not matter
    changed = parse_ruleset(
        DEFAULT_YAML.replace("large_amount_cny: 50000", "large_amount_cny: 50001")
    )
    assert changed.version != a.version


def test_a_good_extra_rule_is_accepted() -> None:
    assert "extra_rule" in {r.code for r in parse_ruleset(_with_rule(GOOD_RULE)).rules}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("{amount_cny: {ge: 1}}", "{amount_cnyy: {ge: 1}}"), "unknown feature 'amount_cnyy'"),
        (
            ("{amount_cny: {ge: 1}}", "{amount_cny: {contains: 1}}"),
            "operator 'contains' does not apply to a number",
        ),
        (("{amount_cny: {ge: 1}}", "{amount_cny: {ge: $no_such}}"), "unknown parameter '$no_such'"),
        (("{amount_cny: {ge: 1}}", "{amount_cny: {ge: lots}}"), "needs a number"),
        (("{amount_cny: {ge: 1}}", "{payee_known: maybe}"), "takes eq/ne with true or false"),
        (
            ("{amount_cny: {ge: 1}}", "{reason_typologies: {contains: romance}}"),
            "unknown typology 'romance'",
        ),
        (("{amount_cny: {ge: 1}}", "{all: []}"), "non-empty list"),
        (("    points: 5\n", "    points: 5\n    floor: maybe\n"), "floor"),
        (
            ("    points: 5\n", "    points: -5\n    floor: review\n"),
            "mitigation (negative points) cannot have a floor",
        ),
        (("    customer_text: {zh: 额外, en: extra}\n", ""), "needs customer_text"),
        (('    questions: ["why?"]\n', ""), "at least one question"),
        (("applies_to: [transfer]", "applies_to: [wire]"), "unknown operation kinds ['wire']"),
        (
            ("specialist_text: extra", "specialist_text: 'amount {amont}'"),
            "unknown placeholder {amont}",
        ),
        (
            ("    points: 5\n", "    points: 5\n    colour: red\n"),
            "colour: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_rule_is_rejected_naming_rule_and_problem(
    change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in GOOD_RULE
    with pytest.raises(RulesetError) as info:
        parse_ruleset(_with_rule(GOOD_RULE.replace(old, new)))
    message = str(info.value)
    assert "rule 'extra_rule'" in message
    assert expected in message


def test_duplicate_and_reserved_codes() -> None:
    with pytest.raises(RulesetError, match="rule 'new_payee': duplicate code"):
        parse_ruleset(_with_rule(GOOD_RULE.replace("extra_rule", "new_payee")))
    with pytest.raises(RulesetError, match="rule 'engine_error': code is reserved"):
        parse_ruleset(_with_rule(GOOD_RULE.replace("extra_rule", "engine_error")))


def test_every_problem_is_reported_at_once() -> None:
    two_bad = _with_rule(GOOD_RULE.replace("amount_cny", "nope")) + GOOD_RULE.replace(
        "extra_rule", "second_rule"
    ).replace("points: 5", "points: 0")
    with pytest.raises(RulesetError) as info:
        parse_ruleset(two_bad)
    assert len(info.value.problems) == 2
    assert "rule 'extra_rule'" in info.value.problems[0]
    assert "rule 'second_rule'" in info.value.problems[1]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  warn: 20\n", "  warn: 90\n", "thresholds must increase"),
        ("  large_amount_cny: 50000", "  big: 50000", "params must define large_amount_cny"),
        ("schema_version: 1", "schema_version: 2", "schema_version"),
        ("  USD: 7.2", "  USD: -7.2", "rates must be positive"),
    ],
)
def test_invalid_ruleset_settings(old: str, new: str, expected: str) -> None:
    assert old in DEFAULT_YAML
    with pytest.raises(RulesetError, match=re.escape(expected)) as info:
        parse_ruleset(DEFAULT_YAML.replace(old, new, 1))
    assert "ruleset: " in str(info.value)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesetError, match="not valid YAML"):
        parse_ruleset("rules: [\n  - {")
    with pytest.raises(RulesetError, match="top level"):
        parse_ruleset("- just\n- a list\n")
    with pytest.raises(RulesetError, match="cannot read file"):
        load_ruleset(tmp_path / "missing.yaml")
    with pytest.raises(RulesetError, match="cannot read file"):
        load_ruleset(str(tmp_path / "missing.yaml"))


def test_load_from_path_and_text(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(DEFAULT_YAML, encoding="utf-8")
    assert (
        load_ruleset(path).version
        == load_ruleset(str(path)).version
        == load_ruleset(DEFAULT_YAML).version
    )


def test_features_are_documented() -> None:
    for name, feature in FEATURES.items():
        assert feature.doc and feature.kind in {"number", "bool", "str", "set"}, name
        assert 1 <= feature.cost <= 3
