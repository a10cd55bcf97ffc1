"""The risk engine: one live ruleset, an optional shadow, a fail-safe evaluation.

How a decision is made:

1. The rules that apply to the operation kind are evaluated (three-valued:
   a rule whose outcome hinges on an unknown fact is *undecided*).
2. Risk points: within each group the strongest fired rule counts; the sum is
   multiplied by the age weight; mitigations (negative points) are added;
   the score maps to a decision through the ruleset's thresholds.
3. Floors: a fired rule's ``floor`` raises the decision; mitigations never
   lower a floor.
4. Fail-safe: an undecided rule, an unknown age needed for weighting, or
   any exception makes the decision at least ``review``, or ``hold`` when
   the amount is at or above the large-amount threshold or itself unknown.
5. Naming: a decision above allow names the scam the story and behaviour
   point to most (``risk.inference``), first among the reasons, in words
   the customer understands. Naming never changes the decision.

``evaluate`` never raises and never awaits. ``reload`` validates before it
swaps; the engine's state is one reference replaced in a single assignment,
so an evaluation sees either the old rulesets or the new ones, never a mix.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from risk.features import UNKNOWN, FeatureContext
from risk.inference import naming_reason
from risk.model import (
    Assessment,
    CallSession,
    CustomerProfile,
    Decision,
    Operation,
    Reason,
    RiskLists,
    RuleSnooze,
    ShadowResult,
)
from risk.ruleset import (
    OPERATION_KINDS,
    CompiledRule,
    Ruleset,
    load_default_ruleset,
    load_ruleset,
)
from risk.texts import engine_error_reason, feature_unavailable_reason


@dataclass(frozen=True)
class _State:
    live: Ruleset
    shadow: Ruleset | None


class _TemplateValues:
    """Feature values for ``str.format_map``; numbers are rounded for reading."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: FeatureContext) -> None:
        self._ctx = ctx

    def __getitem__(self, key: str) -> object:
        value = self._ctx.get(key)
        if isinstance(value, float) and math.isfinite(value):
            return round(value, 1) if abs(value) < 100 else round(value)
        return value


def _render(rule: CompiledRule, ctx: FeatureContext) -> Reason:
    if not rule.placeholders:
        return rule.reason
    try:
        text = rule.specialist_template.format_map(_TemplateValues(ctx))
    except Exception:  # a text problem must not cost the decision
        text = rule.specialist_template
    r = rule.reason
    return Reason(r.code, text, r.customer_text, r.questions, r.points)


def _fail_safe_floor(ruleset_large: float, ctx: FeatureContext | None, op: object) -> Decision:
    """Review, or hold if the operation's amount is large or cannot be known."""
    if not isinstance(op, Operation):
        return Decision.HOLD
    if op.kind not in ("transfer", "limit_change"):
        return Decision.REVIEW
    name = "amount_cny" if op.kind == "transfer" else "new_limit_cny"
    try:
        if ctx is not None:
            value = ctx.get(name)
        else:
            raw = op.amount if op.kind == "transfer" else op.new_limit
            rate_free = raw is not None and (op.currency or "").upper() == "CNY"
            value = float(raw) if rate_free and raw is not None else UNKNOWN
    except Exception:
        value = UNKNOWN
    if not isinstance(value, int | float) or not math.isfinite(value) or value >= ruleset_large:
        return Decision.HOLD  # large, or not knowable: both are held
    return Decision.REVIEW


_BY_RANK: tuple[Decision, ...] = tuple(Decision)


def _snoozed(
    snoozes: Mapping[str, tuple[RuleSnooze, ...]], code: str, customer: str | None, now: datetime
) -> bool:
    """An unexpired snooze covers this rule, for everyone or for this customer."""
    entries = snoozes.get(code)
    return entries is not None and any(
        s.expires_at > now and (s.customer_id is None or s.customer_id == customer) for s in entries
    )


def evaluate_ruleset(
    ruleset: Ruleset,
    operation: Operation,
    profile: CustomerProfile | None,
    session: CallSession | None,
    lists: RiskLists | None,
    now: datetime,
) -> Assessment:
    """Evaluate one ruleset. Pure; may raise on malformed input (the engine catches)."""
    ctx = FeatureContext(operation, profile, session, lists, now, ruleset.features)
    rules = ruleset.rules_by_kind.get(operation.kind, ())
    # An operation kind nobody wrote rules for is unchecked, not harmless.
    undecided = operation.kind not in OPERATION_KINDS
    if undecided:
        ctx.missing["kind"] = "unknown operation kind"

    snoozes = lists.snooze_index if lists is not None and lists.snoozes else None
    customer = profile.customer_id if profile is not None else None

    fired: list[CompiledRule] = []
    mitigations: list[CompiledRule] = []
    snoozed: list[str] = []
    if rules:
        held, unsure = ruleset.evaluators[operation.kind](ctx)
        for index in held:
            rule = rules[index]
            if snoozes and rule.snoozable and _snoozed(snoozes, rule.code, customer, now):
                snoozed.append(rule.code)
            elif rule.points < 0:
                mitigations.append(rule)
            else:
                fired.append(rule)
        for index in unsure:
            rule = rules[index]
            if snoozes and rule.snoozable and _snoozed(snoozes, rule.code, customer, now):
                snoozed.append(rule.code)
            else:
                undecided = True

    score = 0
    floor_rank = 0
    if fired:
        strongest: dict[str, int] = {}
        for rule in fired:
            if rule.points > strongest.get(rule.group, 0):
                strongest[rule.group] = rule.points
            if rule.floor_rank > floor_rank:
                floor_rank = rule.floor_rank
        risk_points = sum(strongest.values())
        if risk_points and ruleset.age_weights:
            age = ctx.get("age")
            if age is UNKNOWN:
                undecided = True  # cannot weight; fail safe below
            else:
                assert isinstance(age, int | float)
                risk_points = round(risk_points * ruleset.age_factor(age))
        score = risk_points
    for rule in mitigations:
        score += rule.points
    score = max(score, 0)

    rank = max(ruleset.decision_for(score).rank, floor_rank)
    reasons = [_render(rule, ctx) for rule in fired]
    missing = ctx.missing
    if undecided:
        rank = max(rank, _fail_safe_floor(ruleset.large_amount_cny, ctx, operation).rank)
        reasons.append(feature_unavailable_reason(sorted(missing.items())))
    typology: str | None = None
    if rank > 0:
        try:
            named = naming_reason(ctx)
        except Exception:  # an explanation must not cost the decision
            named = None
        if named is not None:
            typology, reason = named
            reasons.insert(0, reason)

    return Assessment(
        decision=_BY_RANK[rank],
        score=score,
        reasons=tuple(reasons),
        ruleset_version=ruleset.version,
        mitigations=tuple([_render(rule, ctx) for rule in mitigations]) if mitigations else (),
        unknown_features=tuple(sorted(missing)) if missing else (),
        snoozed=tuple(snoozed),
        typology=typology,
    )


def _evaluate_safely(
    ruleset: Ruleset,
    operation: Operation,
    profile: CustomerProfile | None,
    session: CallSession | None,
    lists: RiskLists | None,
    now: datetime,
) -> Assessment:
    try:
        return evaluate_ruleset(ruleset, operation, profile, session, lists, now)
    except Exception as exc:  # the fail-safe: an error is never an allow
        return Assessment(
            decision=_fail_safe_floor(ruleset.large_amount_cny, None, operation),
            score=0,
            reasons=(engine_error_reason(type(exc).__name__),),
            ruleset_version=ruleset.version,
        )


class RiskEngine:
    """Decides on operations with a live ruleset; optionally runs a shadow beside it.

    Usage::

        engine = RiskEngine()                      # the packaged default ruleset
        engine.reload("rules/2025-06.yaml")        # validate, then swap
        engine.set_shadow("rules/candidate.yaml")  # reported, never enforced

    Evaluations read the state without a lock; changes to it are serialised
    so that a concurrent ``reload`` and ``set_shadow`` cannot undo each other.
    """

    def __init__(self, ruleset: Ruleset | None = None, *, shadow: Ruleset | None = None) -> None:
        self._state = _State(live=ruleset or load_default_ruleset(), shadow=shadow)
        self._writer = threading.Lock()

    @property
    def ruleset(self) -> Ruleset:
        """The live ruleset."""
        return self._state.live

    @property
    def shadow(self) -> Ruleset | None:
        """The shadow ruleset, if any."""
        return self._state.shadow

    def reload(self, source: str | Path | Ruleset) -> Ruleset:
        """Make ``source`` the live ruleset (a path, YAML text, or a compiled Ruleset).

        Validation happens first; on :class:`~risk.ruleset.RulesetError` the
        current ruleset stays in force.
        """
        ruleset = source if isinstance(source, Ruleset) else load_ruleset(source)
        with self._writer:
            self._state = replace(self._state, live=ruleset)
        return ruleset

    def set_shadow(self, source: str | Path | Ruleset | None) -> Ruleset | None:
        """Run ``source`` as a shadow ruleset beside the live one; None removes it."""
        ruleset = source if source is None or isinstance(source, Ruleset) else load_ruleset(source)
        with self._writer:
            self._state = replace(self._state, shadow=ruleset)
        return ruleset

    def evaluate(
        self,
        operation: Operation,
        profile: CustomerProfile | None,
        session: CallSession | None,
        lists: RiskLists | None,
        now: datetime,
    ) -> Assessment:
        """Decide on ``operation``. Never raises; never returns allow when unsure."""
        state = self._state  # read once: a concurrent reload cannot mix rulesets
        result = _evaluate_safely(state.live, operation, profile, session, lists, now)
        if state.shadow is not None:
            shadow = _evaluate_safely(state.shadow, operation, profile, session, lists, now)
            result = replace(
                result,
                shadow=ShadowResult(
                    decision=shadow.decision,
                    score=shadow.score,
                    reason_codes=shadow.reason_codes,
                    ruleset_version=shadow.ruleset_version,
                ),
            )
        return result
