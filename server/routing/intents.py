"""What a customer calls about (the call's intent) and which skills serve it.

The app sends an ``intent`` from a fixed list; routing prefers specialists whose
skills cover it. The map is explicit so that a skill name in the staff table and an
intent on the wire can change independently, and so that one intent can be served
by several skills:

============================ ===================================================
intent                       skills that cover it
============================ ===================================================
``transfer``                 ``transfer``
``passbook``                 ``passbook``
``loss_report``              ``loss_report``; ``passbook`` (a passbook is the usual
                             lost medium of an elderly customer); ``card``
``password``                 ``password``
``pension_certification``    ``pension``
``deposit``                  ``deposit`` or ``time_deposit``
``other``                    none: no skill preference, the ladder starts at the
                             dialect step
============================ ===================================================

Pure data and functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

INTENT_SKILLS: Mapping[str, frozenset[str]] = {
    "transfer": frozenset({"transfer"}),
    "passbook": frozenset({"passbook"}),
    "loss_report": frozenset({"loss_report", "passbook", "card"}),
    "password": frozenset({"password"}),
    "pension_certification": frozenset({"pension"}),
    "deposit": frozenset({"deposit", "time_deposit"}),
    "other": frozenset(),
}

#: Every intent ``POST /api/v1/calls`` accepts, in the order the contract lists them.
INTENTS: tuple[str, ...] = tuple(INTENT_SKILLS)


def routed_intent(intent: str | None) -> str | None:
    """The intent routing looks for a skill for, or None (no preference)."""
    if intent is None or not INTENT_SKILLS.get(intent):
        return None
    return intent


def covered_intents(skills: Iterable[str]) -> frozenset[str]:
    """The intents a specialist with ``skills`` is preferred for."""
    held = frozenset(skills)
    return frozenset(intent for intent, needed in INTENT_SKILLS.items() if needed & held)


def skill_key(dialect: str | None, intent: str) -> str:
    """The routing pool of the skill step: who has the skill for ``intent`` (and
    speaks ``dialect``, when the call has one). ``|`` cannot occur in either part
    (dialects are lowercase letters, intents come from :data:`INTENTS`)."""
    return f"{dialect or ''}|{intent}"


def skill_keys(fluent_dialects: Iterable[str], intents: Iterable[str]) -> frozenset[str]:
    """Every skill-step pool a specialist belongs to: each covered intent alone
    (calls without a dialect) and with each dialect they speak fluently."""
    dialects = [None, *fluent_dialects]
    return frozenset(skill_key(d, intent) for intent in intents for d in dialects)
