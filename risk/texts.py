"""Texts of the reasons the engine itself produces (not tied to a rule).

They are deliberately generic: when the engine could not check something,
the specialist must check it by asking, and the customer is told plainly why
they are being asked, without alarming them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from risk.model import Reason

ENGINE_ERROR = "engine_error"
FEATURE_UNAVAILABLE = "feature_unavailable"

_CUSTOMER_CHECK: Mapping[str, str] = MappingProxyType(
    {
        "zh": "为了保护您的资金安全，工作人员需要和您再核实一下这笔业务。请不要着急，"
        "也不要听从任何陌生来电或短信的指示。公安、法院和银行都不会要求您转账。",
        "en": "To keep your money safe, our staff need to check this with you first. "
        "There is no hurry. Do not follow instructions from anyone who phoned or texted you: "
        "the police, the courts and banks never ask you to transfer money.",
    }
)

_GENERIC_QUESTIONS: tuple[str, ...] = (
    "What is this money for, in the customer's own words?",
    "Does the customer know the payee personally, and since when?",
    "Has anyone phoned, texted or messaged the customer about this transfer, "
    "claiming to be police, a court, a bank, an insurer or a relative?",
    "Has anyone asked the customer to keep this secret or to hurry?",
)


def engine_error_reason(error_type: str) -> Reason:
    """The reason given when evaluation itself failed (only the error type is kept:
    messages could carry customer data)."""
    return Reason(
        code=ENGINE_ERROR,
        specialist_text=(
            f"The risk check could not be completed ({error_type}). Treat the operation as "
            "unchecked: ask the questions below and proceed only if the answers are clear."
        ),
        customer_text=_CUSTOMER_CHECK,
        questions=_GENERIC_QUESTIONS,
    )


def feature_unavailable_reason(missing: Iterable[tuple[str, str]]) -> Reason:
    """The reason given when facts the rules need could not be established."""
    listed = "; ".join(f"{name}: {why}" for name, why in missing)
    return Reason(
        code=FEATURE_UNAVAILABLE,
        specialist_text=(
            f"Some checks could not be made because data is missing ({listed}). "
            "Establish these points with the customer before proceeding."
        ),
        customer_text=_CUSTOMER_CHECK,
        questions=_GENERIC_QUESTIONS,
    )
