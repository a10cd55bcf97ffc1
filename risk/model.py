"""Domain values the risk engine reads and returns.

Everything here is a frozen dataclass. ``None`` always means *unknown*: the
engine never reads a missing value as a harmless one. Where an empty value
is meaningful it is spelled out (``()`` known payees means "has none",
``None`` means "not loaded").
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property

from risk.habits import HabitProfile
from risk.normalise import normalise_account, normalise_phone


class Decision(enum.StrEnum):
    """The engine's verdict, ordered ``allow < warn < review < hold < block``.

    ``str`` compares lexicographically, so the comparison operators are
    redefined on the rank; ``max(a, b)`` therefore picks the stronger one.
    """

    ALLOW = "allow"
    WARN = "warn"
    REVIEW = "review"
    HOLD = "hold"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        """0 for allow up to 4 for block."""
        return _RANK[self]

    def __lt__(self, other: str) -> bool:
        return _RANK[self] < _rank_of(other)

    def __le__(self, other: str) -> bool:
        return _RANK[self] <= _rank_of(other)

    def __gt__(self, other: str) -> bool:
        return _RANK[self] > _rank_of(other)

    def __ge__(self, other: str) -> bool:
        return _RANK[self] >= _rank_of(other)


def _rank_of(other: object) -> int:
    # A plain string must not fall back to alphabetical order ("allow" < "block"
    # by accident, "hold" < "review" wrongly): compare by rank or refuse.
    if isinstance(other, Decision):
        return _RANK[other]
    if isinstance(other, str) and other in _BY_VALUE:
        return _RANK[_BY_VALUE[other]]
    raise TypeError(f"cannot order a Decision against {other!r}")


_RANK: dict[Decision, int] = {d: i for i, d in enumerate(Decision)}
_BY_VALUE: dict[str, Decision] = {d.value: d for d in Decision}


# --------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Operation:
    """The operation the specialist is about to run.

    ``kind`` is one of the contract's operation kinds (``transfer``,
    ``limit_change``, ``password_reset``, ...). Fields a kind does not use are
    ``None``, as are fields the caller does not know. ``amount`` is the
    transfer's amount, or a time deposit's principal.
    """

    kind: str
    amount: Decimal | None = None
    currency: str | None = None
    payee_account: str | None = None
    payee_name: str | None = None
    payee_bank: str | None = None
    #: Mobile number the money goes to, for transfers addressed by phone.
    payee_phone: str | None = None
    #: Limit changes: the channel ("mobile", "counter", ...) and the new limit.
    channel: str | None = None
    new_limit: Decimal | None = None
    #: Time deposits: ``open`` or ``break``, the term, and for an early break
    #: the interest the customer gives up (in ``currency``).
    deposit_action: str | None = None
    term_months: int | None = None
    interest_forfeited: Decimal | None = None


@dataclass(frozen=True)
class KnownPayee:
    """A payee in the customer's payee book; ``relation`` None = none recorded."""

    account: str
    first_seen: date
    name: str | None = None
    relation: str | None = None


@dataclass(frozen=True)
class RecentEvent:
    """Something that happened on the customer's accounts lately.

    Kinds the default ruleset reads: ``password_reset``, ``limit_change``,
    ``time_deposit_break``, ``new_device``, ``payee_added``, ``contact_change``
    (the mobile number for SMS codes was changed).
    """

    kind: str
    at: datetime


@dataclass(frozen=True)
class VideoIntegrity:
    """What the media node's analysis says of the customer's video in this call.

    ``status`` is ``ok``, ``suspect`` or ``unknown`` (analysis not running, or
    direct media). ``signals`` are the active signal codes (``video_frozen``,
    ``video_looped``, ``frame_timing_anomaly``, ``face_absent``,
    ``multiple_faces``). ``liveness`` is the latest liveness challenge result in
    the call: ``passed``, ``failed``, or None when none has run.
    """

    status: str
    signals: tuple[str, ...] = ()
    liveness: str | None = None


@dataclass(frozen=True)
class CustomerProfile:
    """What the bank knows about the customer at evaluation time."""

    customer_id: str
    name: str | None = None
    age: int | None = None
    tenure_days: int | None = None
    balance: Decimal | None = None
    home_bank: str | None = None
    habits: HabitProfile | None = None
    known_payees: tuple[KnownPayee, ...] | None = None
    recent_events: tuple[RecentEvent, ...] | None = None

    @cached_property
    def payee_index(self) -> Mapping[str, KnownPayee] | None:
        """Known payees by normalised account number (built once per profile)."""
        if self.known_payees is None:
            return None
        return {normalise_account(p.account): p for p in self.known_payees}


@dataclass(frozen=True)
class PriorOperation:
    """An earlier operation in the same call, whatever became of it.

    ``outcome`` is the operation state (``executed``, ``held``, ``blocked``,
    ``rejected``, ``awaiting_review`` ...), so attempts that were stopped still
    count towards velocity.
    """

    kind: str
    at: datetime
    outcome: str
    amount: Decimal | None = None
    currency: str | None = None
    payee_account: str | None = None
    new_limit: Decimal | None = None


@dataclass(frozen=True)
class CallSession:
    """The call so far.

    ``redirect_kind`` None means the call did not come from a redirect (the
    server always knows this). ``stated_reason`` None means the specialist has
    not recorded one; ``""`` means the customer gave none. ``contact_phones``
    are numbers the customer reports being contacted from in connection with
    this operation. ``video_integrity`` None means unknown (no analysis).
    """

    call_id: str | None = None
    redirect_kind: str | None = None
    earlier_operations: tuple[PriorOperation, ...] | None = None
    stated_reason: str | None = None
    local_time: datetime | None = None
    contact_phones: tuple[str, ...] = ()
    video_integrity: VideoIntegrity | None = None


@dataclass(frozen=True)
class AllowListEntry:
    """A customer→payee pair a supervisor vouched for, until ``expires_at``."""

    customer_id: str
    payee_account: str
    expires_at: datetime
    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("an allow-list entry needs a reason")


@dataclass(frozen=True)
class RuleSnooze:
    """Switch one rule off until ``expires_at``; ``customer_id`` None = everyone."""

    rule_code: str
    expires_at: datetime
    reason: str
    customer_id: str | None = None

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("a rule snooze needs a reason")


@dataclass(frozen=True)
class RiskLists:
    """Block lists, allow list and snoozes; a ``None`` list is one that is unavailable."""

    blocked_accounts: frozenset[str] | None = None
    blocked_phones: frozenset[str] | None = None
    allow_list: tuple[AllowListEntry, ...] | None = None
    snoozes: tuple[RuleSnooze, ...] = ()

    @cached_property
    def blocked_account_index(self) -> frozenset[str] | None:
        """Blocked accounts, normalised once per lists object."""
        if self.blocked_accounts is None:
            return None
        return frozenset(normalise_account(a) for a in self.blocked_accounts)

    @cached_property
    def blocked_phone_index(self) -> frozenset[str] | None:
        """Blocked phone numbers, normalised once per lists object."""
        if self.blocked_phones is None:
            return None
        return frozenset(normalise_phone(p) for p in self.blocked_phones)

    @cached_property
    def allow_index(self) -> Mapping[tuple[str, str], tuple[AllowListEntry, ...]] | None:
        """Allow-list entries by (customer, normalised payee account)."""
        if self.allow_list is None:
            return None
        index: dict[tuple[str, str], tuple[AllowListEntry, ...]] = {}
        for entry in self.allow_list:
            key = (entry.customer_id, normalise_account(entry.payee_account))
            index[key] = (*index.get(key, ()), entry)
        return index

    @cached_property
    def snooze_index(self) -> Mapping[str, tuple[RuleSnooze, ...]]:
        """Snoozes by rule code, so an evaluation looks up only the rules that fired."""
        index: dict[str, tuple[RuleSnooze, ...]] = {}
        for snooze in self.snoozes:
            index[snooze.rule_code] = (*index.get(snooze.rule_code, ()), snooze)
        return index


# -------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Reason:
    """One explained finding.

    ``customer_text`` maps a language code (``zh``, ``en``) to a plain warning;
    it is empty for mitigations, which are shown to the specialist only.
    ``points`` is the rule's contribution before age weighting.
    """

    code: str
    specialist_text: str
    customer_text: Mapping[str, str] = field(default_factory=dict)
    questions: tuple[str, ...] = ()
    points: int = 0


@dataclass(frozen=True)
class ShadowResult:
    """What a shadow ruleset would have decided; reported, never enforced."""

    decision: Decision
    score: int
    reason_codes: tuple[str, ...]
    ruleset_version: str


@dataclass(frozen=True)
class Assessment:
    """The engine's answer for one operation.

    ``unknown_features`` lists features that were needed but could not be
    computed; ``snoozed`` lists snoozed rules that would otherwise have fired
    (or been undecided) for this operation; ``typology`` is the scam the
    warning names, when the decision is above allow and the story and the
    behaviour point to one.
    """

    decision: Decision
    score: int
    reasons: tuple[Reason, ...]
    ruleset_version: str
    mitigations: tuple[Reason, ...] = ()
    unknown_features: tuple[str, ...] = ()
    snoozed: tuple[str, ...] = ()
    shadow: ShadowResult | None = None
    #: the scam typology the customer's warning names (None: none named)
    typology: str | None = None

    @property
    def reason_codes(self) -> tuple[str, ...]:
        """The codes of ``reasons`` in order."""
        return tuple(r.code for r in self.reasons)
