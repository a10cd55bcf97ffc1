"""Which scam this looks like: the customer's story and the operation's behaviour, combined.

For each typology the evidence is

- the **story**: the summed weights of the statement's cues that count (not
  negated; phrases describing the customer's family left out when the money
  goes to long-known family), capped, plus a bounded share of the statement
  model's probability when the model's best class is that typology;
- the **behaviour**: the typology's weights for the signals that hold (a new
  payee, most of the balance, the customer's own name at another bank, a
  recent password reset or new device, a "relative" whose account is new ...).

A statement *tells of* a typology when its story alone reaches the ruleset's
``story_threshold``; the typology is *named* when story and behaviour together
reach ``name_threshold`` (the most likely one wins). The story feeds the rules
and so the score; the naming explains. Neither lowers a floor or a fail-safe:
they only add evidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from risk.features import (
    UNKNOWN,
    FeatureContext,
    MissingData,
    feature,
    to_cny,
)
from risk.integrity import VIDEO_SIGNALS
from risk.language.reading import Reading
from risk.model import Reason
from risk.typologies import TypologyInfo

#: cap on one typology's story weight, so a pile of cues cannot swamp behaviour
STORY_CAP = 2.0
#: share of the statement model's probability added to its best class
MODEL_SHARE = 0.6
MODEL_MIN_PROBABILITY = 0.5
NEW_PAYEE_DAYS = 7.0
CONTACT_CHANGE_HOURS = 168.0
#: what a replayed clip or an injected camera looks like (someone posing as the customer)
_POSING = VIDEO_SIGNALS - {"multiple_faces"}
NAMED_REASON = "scam_named"


def _is_transfer(ctx: FeatureContext) -> bool:
    return ctx.op.kind == "transfer"


# The comparisons read the feature directly: UNKNOWN is not a number, so an
# unknown fact is simply absent (these run for every typology on every naming).
_NUMBER = (int, float)


def _ge(ctx: FeatureContext, name: str, bound: float) -> bool:
    value = ctx.get(name)
    return isinstance(value, _NUMBER) and value >= bound


def _lt(ctx: FeatureContext, name: str, bound: float) -> bool:
    value = ctx.get(name)
    return isinstance(value, _NUMBER) and value < bound


def _within(ctx: FeatureContext, name: str, hours: float) -> bool:
    value = ctx.get(name)
    return isinstance(value, _NUMBER) and value <= hours


def _intersects(ctx: FeatureContext, name: str, members: set[str] | frozenset[str]) -> bool:
    value = ctx.get(name)
    return isinstance(value, frozenset) and not value.isdisjoint(members)


def _notable(ctx: FeatureContext) -> bool:
    return ctx.op.kind == "transfer" and _ge(ctx, "amount_cny", 5000)


#: Behaviour signals typologies can weigh; each is False when it cannot be known.
SIGNALS: Mapping[str, Callable[[FeatureContext], bool]] = {
    "new_payee": lambda c: c.op.kind == "transfer" and _lt(c, "payee_known_days", NEW_PAYEE_DAYS),
    "own_name_new_account": lambda c: (
        c.op.kind == "transfer"
        and c.get("payee_name_matches_customer") is True
        and c.get("payee_other_bank") is True
        and _lt(c, "payee_known_days", 30)
    ),
    "drains_balance": lambda c: _notable(c) and _ge(c, "share_of_balance", 0.8),
    "empties_account": lambda c: _notable(c) and _ge(c, "share_of_balance", 0.95),
    "large_for_customer": lambda c: _notable(c) and _ge(c, "amount_vs_p95", 3),
    "takeover_recent": lambda c: (
        _within(c, "hours_since_password_reset", 72) or _within(c, "hours_since_new_device", 72)
    ),
    "deposit_broken_recent": lambda c: _within(c, "hours_since_deposit_break", 168),
    "deposit_break": lambda c: c.op.kind == "time_deposit" and c.op.deposit_action == "break",
    "retry_after_stop": lambda c: _ge(c, "stopped_in_call", 1),
    "split_payments": lambda c: c.op.kind == "transfer" and _ge(c, "velocity_count_24h", 2),
    "claimed_relative_new_payee": lambda c: c.get("claimed_relative_new_payee") is True,
    "night": lambda c: _ge(c, "local_hour", 22) or _lt(c, "local_hour", 6),
    "long_known_payee": lambda c: (
        c.op.kind == "transfer" and _ge(c, "payee_known_days", c.params.long_known_days)
    ),
    "contact_changed_recent": lambda c: _within(
        c, "hours_since_contact_change", CONTACT_CHANGE_HOURS
    ),
    "video_posing": lambda c: _intersects(c, "video_signals", _POSING),
    "prompted_on_camera": lambda c: _intersects(c, "video_signals", {"multiple_faces"}),
    "liveness_failed": lambda c: c.get("liveness_result") == "failed",
}


# ------------------------------------------------------------------ the story


def reading(ctx: FeatureContext) -> Reading | None:
    """The stated reason, read once per evaluation; None when none was recorded."""
    cached = ctx.values.get("_reading", UNKNOWN)
    if cached is not UNKNOWN:
        return cached if isinstance(cached, Reading) else None
    statement = ctx.session.stated_reason if ctx.session is not None else None
    result = ctx.params.reader.read(statement) if statement else None
    ctx.values["_reading"] = result
    return result


def _long_known_payee(ctx: FeatureContext) -> tuple[bool, bool]:
    """Whether the money goes to a payee known for long, and whether that payee
    is recorded as family."""
    known = _is_transfer(ctx) and _ge(ctx, "payee_known_days", ctx.params.long_known_days)
    return known, known and ctx.get("payee_relation") == "family"


#: operations that pay no one: words about the family cannot be about a stranger's account
_NO_PAYEE_KINDS = frozenset(
    {
        "balance_inquiry",
        "passbook_statement",
        "card_activation",
        "loss_report",
        "replacement",
        "pension_certification",
        "certificate",
    }
)


def _cue_story(ctx: FeatureContext) -> Mapping[str, float]:
    """Story weight per typology from the cues alone."""
    cached = ctx.values.get("_cue_story")
    if isinstance(cached, dict):
        return cached
    result: dict[str, float] = {}
    read = reading(ctx)
    if read is not None and read.cues:
        known = ctx.params.typologies
        to_known, to_family = _long_known_payee(ctx)
        # Who the words are about: the payee book settles it for a payment; an
        # operation that pays no one cannot send the money to a stranger at all.
        discount = to_family or ctx.op.kind in _NO_PAYEE_KINDS
        for name, weight in read.cue_weights(discount).items():
            info = known.get(name)
            if (
                info is None
                or (to_family and info.family_payee_settles)
                or (to_known and info.known_payee_settles)
            ):
                continue
            result[name] = min(weight, STORY_CAP)
    ctx.values["_cue_story"] = result
    return result


def story(ctx: FeatureContext) -> Mapping[str, float]:
    """Story weight per typology (only typologies with some weight)."""
    cached = ctx.values.get("_story")
    if isinstance(cached, dict):
        return cached
    result = dict(_cue_story(ctx))
    read = reading(ctx)
    if read is not None:
        known = ctx.params.typologies
        model = read.model
        if (
            model is not None
            and model.best in known
            and model.best_probability >= MODEL_MIN_PROBABILITY
        ):
            result[model.best] = result.get(model.best, 0.0) + MODEL_SHARE * model.best_probability
    ctx.values["_story"] = result
    return result


def _told(ctx: FeatureContext) -> frozenset[str]:
    bar = ctx.params.story_threshold
    cues = _cue_story(ctx)
    # The model adds at most MODEL_SHARE to one typology: when no cue weight is
    # within that of the bar, the model cannot change the answer, so it is not run.
    if all(weight < bar - MODEL_SHARE for weight in cues.values()):
        return frozenset()
    return frozenset(name for name, weight in story(ctx).items() if weight >= bar)


class Inference(NamedTuple):
    """The most likely typology and the evidence for it (a named tuple: one is
    made per naming, and a frozen dataclass costs several times more to make)."""

    best: str | None
    evidence: float
    signals: tuple[str, ...]


def infer(ctx: FeatureContext) -> Inference:
    """Story and behaviour combined; unknown facts count as absent, and are not
    reported as missing (this is evidence for an explanation, not a check)."""
    cached = ctx.values.get("_inference")
    if isinstance(cached, Inference):
        return cached
    missing = ctx.missing
    before = len(missing)
    try:
        told = story(ctx)
        plan = _plan(ctx.params.typologies)
        # each signal once, in the order the plan lists them
        held = [test(ctx) for test in plan.tests]
        best: str | None = None
        best_score = -math.inf
        best_weighted: tuple[tuple[int, float], ...] = ()
        for name, weighted in plan.typologies:
            score = told.get(name, 0.0)
            for index, weight in weighted:
                if held[index]:
                    score += weight
            if score > best_score:
                best, best_score, best_weighted = name, score, weighted
        signals = tuple(plan.names[i] for i, w in best_weighted if w > 0 and held[i])
        result = Inference(best, best_score if best is not None else 0.0, signals)
    finally:
        if len(missing) != before:  # forget what only the explanation looked for
            for key in list(missing)[before:]:
                del missing[key]
    ctx.values["_inference"] = result
    return result


@dataclass(frozen=True)
class _Plan:
    """The typologies' behaviour signals, numbered once per ruleset."""

    names: tuple[str, ...]
    tests: tuple[Callable[[FeatureContext], bool], ...]
    #: (typology, ((signal number, weight), ...)) in the ruleset's order
    typologies: tuple[tuple[str, tuple[tuple[int, float], ...]], ...]


_PLANS: dict[int, tuple[Mapping[str, TypologyInfo], _Plan]] = {}


def _plan(typologies: Mapping[str, TypologyInfo]) -> _Plan:
    entry = _PLANS.get(id(typologies))
    if entry is not None and entry[0] is typologies:
        return entry[1]
    names: list[str] = []
    weighted: list[tuple[str, tuple[tuple[int, float], ...]]] = []
    for name, info in typologies.items():
        pairs = []
        for signal, weight in info.signals.items():
            if signal not in SIGNALS:
                continue  # validated by the ruleset schema; never counts
            if signal not in names:
                names.append(signal)
            pairs.append((names.index(signal), weight))
        weighted.append((name, tuple(pairs)))
    plan = _Plan(tuple(names), tuple(SIGNALS[n] for n in names), tuple(weighted))
    if len(_PLANS) > 64:  # rulesets come and go with reloads; keep the cache small
        _PLANS.clear()
    _PLANS[id(typologies)] = (typologies, plan)
    return plan


def naming_reason(ctx: FeatureContext) -> tuple[str, Reason] | None:
    """The reason that names the scam to the customer, when one is likely enough."""
    found = infer(ctx)
    if found.best is None or found.evidence < ctx.params.explain_threshold:
        return None
    info = ctx.params.typologies[found.best]
    parts = [f"Most likely scam: {info.label} (evidence {found.evidence:.1f})."]
    read = reading(ctx)
    if read is not None:
        phrases = read.phrases(found.best)
        if phrases:
            parts.append("Statement: " + ", ".join(f"'{p}'" for p in phrases[:4]) + ".")
        model = read.model
        if model is not None and model.best == found.best and model.top_phrases:
            parts.append(
                f"Statement model {model.best_probability:.0%}, from "
                + ", ".join(f"'{p}'" for p in model.top_phrases)
                + "."
            )
    if found.signals:
        parts.append("Behaviour: " + ", ".join(s.replace("_", " ") for s in found.signals) + ".")
    return found.best, Reason(
        code=NAMED_REASON,
        specialist_text=" ".join(parts),
        customer_text=info.warning,
        questions=info.questions,
    )


# ------------------------------------------------------------------ features


@feature(
    "set",
    "scam typologies the stated reason tells of (negation and context read); a routine "
    "payment with no reason recorded tells of none",
    cost=3,
)
def reason_typologies(ctx: FeatureContext) -> object:
    if ctx.need_session().stated_reason is None:
        if _routine_payment(ctx):
            return frozenset()
        raise MissingData("the customer's stated reason was not recorded")
    return _told(ctx)


#: amount up to which a payment is within the customer's usual range (x their 95th percentile)
ROUTINE_AMOUNT_VS_P95 = 1.0


def _routine_payment(ctx: FeatureContext) -> bool:
    """A payment a teller would not ask about: to a payee the customer has paid
    for long, within their usual range, not large. Any fact unknown: not routine."""
    if not _is_transfer(ctx) or not _ge(ctx, "payee_known_days", ctx.params.long_known_days):
        return False
    if not _ge(ctx, "amount_cny", 0) or _ge(ctx, "amount_cny", ctx.params.large_amount_cny):
        return False
    return _within(ctx, "amount_vs_p95", ROUTINE_AMOUNT_VS_P95)


@feature("set", "as reason_typologies, but empty when no reason was recorded", cost=3)
def said_typologies(ctx: FeatureContext) -> object:
    return _told(ctx)


#: Payee names that are an organisation's: a relative named in the statement is then
#: who the payment is for (a hospital bill), not who is said to receive it.
_ORGANISATION_ENDINGS = (
    "医院",
    "卫生院",
    "诊所",
    "公司",
    "学校",
    "大学",
    "学院",
    "中学",
    "小学",
    "幼儿园",
    "中心",
    "银行",
    "养老院",
    "敬老院",
    "物业",
    "集团",
    "委员会",
    "事务所",
    "超市",
    "局",
)
_ORGANISATION_WORDS = re.compile(
    r"\b(hospital|clinic|school|university|college|ltd|limited|company|inc|bank|council)\b"
)


def _organisation(name: str | None) -> bool:
    if not name:
        return False
    text = name.strip().casefold()
    return text.endswith(_ORGANISATION_ENDINGS) or _ORGANISATION_WORDS.search(text) is not None


@feature(
    "bool", "the reason names a relative, but the payee is a new or this week's person", cost=3
)
def claimed_relative_new_payee(ctx: FeatureContext) -> object:
    if not _is_transfer(ctx) or ctx.number("payee_known_days") >= NEW_PAYEE_DAYS:
        return False
    if _organisation(ctx.op.payee_name):
        return False
    read = reading(ctx)
    return read is not None and bool(read.relatives)


@feature("str", "the typology story and behaviour point to ('none' below the naming bar)", cost=3)
def named_typology(ctx: FeatureContext) -> object:
    found = infer(ctx)
    if found.best is None or found.evidence < ctx.params.name_threshold:
        return "none"
    return found.best


@feature("str", "time deposits: 'open' or 'break'; 'none' for other operations")
def deposit_action(ctx: FeatureContext) -> object:
    if ctx.op.kind != "time_deposit":
        return "none"
    if ctx.op.deposit_action is None:
        raise MissingData("time deposit action not provided")
    return ctx.op.deposit_action


@feature("number", "interest given up by breaking a time deposit early, CNY (0 otherwise)")
def interest_forfeited_cny(ctx: FeatureContext) -> object:
    if ctx.op.kind != "time_deposit" or ctx.op.deposit_action != "break":
        return 0.0
    return to_cny(ctx.params, ctx.op.interest_forfeited, ctx.op.currency, "interest forfeited")
