"""The ruleset file's schema: what a YAML ruleset may say, validated by pydantic.

Only the shape and the local consistency of each part are checked here;
``risk.ruleset`` compiles a validated file (conditions, texts, the reader)
and reports every problem with the rule it belongs to.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk.inference import SIGNALS
from risk.model import Decision

#: Operation kinds with no rules are allowed; these are the ones the server sends.
OPERATION_KINDS = frozenset(
    {
        "transfer",
        "limit_change",
        "balance_inquiry",
        "time_deposit",
        "time_deposit_break",
        "password_reset",
        "card_activation",
        # the counter's everyday business (passbooks, loss reports, contact
        # details, pension certification, certificates)
        "passbook_statement",
        "loss_report",
        "replacement",
        "contact_change",
        "pension_certification",
        "certificate",
    }
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextPair(_Strict):
    """A text in Chinese and English."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class RuleSpec(_Strict):
    """One rule as written in the YAML file."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    description: str = Field(min_length=1)
    applies_to: list[str] = Field(min_length=1)
    when: dict[str, Any]
    points: int = Field(ge=-200, le=200)
    floor: Decision | None = None
    group: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    snoozable: bool = True
    specialist_text: str = Field(min_length=1)
    customer_text: TextPair | None = None
    questions: list[str] = []

    @model_validator(mode="after")
    def _texts_fit_the_kind(self) -> RuleSpec:
        if self.points == 0 and self.floor is None:
            raise ValueError("a rule needs non-zero points or a floor")
        if self.points < 0:
            if self.floor is not None:
                raise ValueError("a mitigation (negative points) cannot have a floor")
            if self.customer_text is not None:
                raise ValueError("a mitigation is not shown to the customer: drop customer_text")
        else:
            if self.customer_text is None:
                raise ValueError("a risk rule needs customer_text in zh and en")
            if not self.questions:
                raise ValueError("a risk rule needs at least one question for the specialist")
        unknown_kinds = sorted(set(self.applies_to) - OPERATION_KINDS)
        if unknown_kinds:
            raise ValueError(f"applies_to has unknown operation kinds {unknown_kinds}")
        return self


class Thresholds(_Strict):
    """Minimum score for each decision above allow."""

    warn: int = Field(gt=0)
    review: int
    hold: int
    block: int

    @model_validator(mode="after")
    def _increasing(self) -> Thresholds:
        if not self.warn < self.review < self.hold < self.block:
            raise ValueError("thresholds must increase: warn < review < hold < block")
        return self


class AgeWeight(_Strict):
    """Risk points are multiplied by ``factor`` from ``min_age`` on."""

    min_age: int = Field(ge=0, le=130)
    factor: float = Field(ge=1.0, le=3.0)


class History(_Strict):
    """When a customer's own history is rich enough to be their yardstick."""

    min_transactions: int = Field(ge=1)
    min_days: float = Field(ge=0)
    min_spread: float = Field(gt=0)


class PeerGroupSpec(_Strict):
    """An age band's typical transfer behaviour (CNY)."""

    min_age: int = Field(ge=0)
    max_age: int = Field(le=150)
    median: float = Field(gt=0)
    spread: float = Field(gt=0)
    p95: float = Field(gt=0)
    usual_hours: list[int]

    @model_validator(mode="after")
    def _sane(self) -> PeerGroupSpec:
        if self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")
        if any(not 0 <= h <= 23 for h in self.usual_hours):
            raise ValueError("usual_hours must be 0..23")
        return self


class Typology(_Strict):
    """A scam type: the words that betray it, the behaviour that points to it,
    and how the customer and the specialist are told about it."""

    label: str = Field(min_length=1)
    #: strong phrases (weight 1)
    zh: list[str] = Field(min_length=1)
    en: list[str] = Field(min_length=1)
    #: weighted phrases in any language; negative weights are innocent contexts
    cues: dict[str, float] = {}
    #: the phrases can describe a person's job ("my son is a police officer")
    roles: bool = False
    #: the story is about the family's own account ("my son changed his number"):
    #: money paid to a long-known family payee reaches the real relative, so it does not count
    family_payee_settles: bool = False
    #: the money goes to the seller's or organiser's own account: a payee paid for
    #: over a year (a friend repaid for a purchase) is not that account, so the story does not count
    known_payee_settles: bool = False
    #: behaviour signal -> weight
    signals: dict[str, float] = {}
    name: TextPair | None = None
    warning: TextPair | None = None
    questions: list[str] = []

    @model_validator(mode="after")
    def _known_signals(self) -> Typology:
        unknown = sorted(set(self.signals) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signals {unknown} (known: {', '.join(sorted(SIGNALS))})")
        if any(not -3.0 <= w <= 3.0 for w in (*self.cues.values(), *self.signals.values())):
            raise ValueError("cue and signal weights must be between -3 and 3")
        return self


class RulesetSpec(_Strict):
    """The top level of a ruleset file (rules are validated one by one)."""

    schema_version: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str
    params: dict[str, float]
    fx_to_cny: dict[str, float]
    thresholds: Thresholds
    age_weights: list[AgeWeight]
    history: History
    peer_groups: list[PeerGroupSpec] = Field(min_length=1)
    typologies: dict[str, Typology]
    rules: list[Any] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RulesetSpec:
        if "large_amount_cny" not in self.params:
            raise ValueError("params must define large_amount_cny (the fail-safe uses it)")
        if any(rate <= 0 for rate in self.fx_to_cny.values()):
            raise ValueError("fx_to_cny rates must be positive")
        for name in self.typologies:
            if not name.isidentifier():
                raise ValueError(f"typology name {name!r} must be an identifier")
        return self
