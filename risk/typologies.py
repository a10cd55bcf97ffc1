"""Scam typologies as the engine uses them: how each is named, and what points to it.

The definitions live in the ruleset (``typologies:``); this module holds the
compiled form. How a statement is read is in :mod:`risk.language`; how story
and behaviour are combined is in :mod:`risk.inference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class TypologyInfo:
    """One typology, compiled from the ruleset."""

    name: str
    label: str
    #: plain words for the customer: "the 'safe account' scam" (zh and en)
    called: Mapping[str, str]
    #: the customer's warning that names the scam (zh and en)
    warning: Mapping[str, str]
    questions: tuple[str, ...]
    #: behaviour signal -> weight (see ``risk.inference.SIGNALS``)
    signals: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: its phrases can describe a person's job, so they may be about the family
    roles: bool = False
    #: money to a long-known family payee reaches the real relative: the story does not count
    family_payee_settles: bool = False
    #: the scam's money goes to the seller's or the "platform's" account: a payee the
    #: customer has paid for long (a friend repaid) is not that account, so the story does not count
    known_payee_settles: bool = False
