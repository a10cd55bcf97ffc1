"""How account numbers and phone numbers are compared (one place for all modules)."""

from __future__ import annotations


def normalise_account(account: str) -> str:
    """Account numbers are compared without spaces or dashes."""
    compact = account.replace(" ", "").replace("-", "")
    if compact.isalnum():  # the usual case, without a per-character loop
        return compact.upper()
    return "".join(ch for ch in compact if ch.isalnum()).upper()


def normalise_phone(phone: str) -> str:
    """Phone numbers are compared on their digits, without a +86/0086 prefix."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            return digits[len(prefix) :]
    return digits
