"""Features about whom the money goes to: the payee book, the customer's own
name at another bank, and the bank-wide block and allow lists."""

from __future__ import annotations

from risk.features import FeatureContext, MissingData, _payee, _payee_account, feature
from risk.normalise import normalise_phone


def _normalise_name(name: str) -> str:
    folded = name.casefold().replace(" ", "")
    if folded.isalnum():  # the usual case (Chinese names are alphanumeric)
        return folded
    return "".join(ch for ch in folded if ch.isalnum())


@feature("bool", "the payee is in the customer's payee book")
def payee_known(ctx: FeatureContext) -> object:
    return _payee(ctx) is not None


@feature("number", "days since the payee was first seen (0 for a new payee)")
def payee_known_days(ctx: FeatureContext) -> object:
    entry = _payee(ctx)
    if entry is None:
        return 0.0
    return max(0.0, float((ctx.now.date() - entry.first_seen).days))


@feature("str", "recorded relation to a known payee ('family', ...); 'none' otherwise")
def payee_relation(ctx: FeatureContext) -> object:
    entry = _payee(ctx)
    if entry is None or entry.relation is None:
        return "none"
    return entry.relation.casefold()


@feature("bool", "payee name equals the customer's own name", cost=2)
def payee_name_matches_customer(ctx: FeatureContext) -> object:
    own = ctx.need_profile().name
    if own is None:
        raise MissingData("customer name not provided")
    if ctx.op.payee_name is None:
        raise MissingData("payee name not provided")
    return _normalise_name(own) == _normalise_name(ctx.op.payee_name)


@feature("bool", "payee bank differs from the customer's home bank")
def payee_other_bank(ctx: FeatureContext) -> object:
    home = ctx.need_profile().home_bank
    if home is None:
        raise MissingData("customer's home bank not provided")
    if ctx.op.payee_bank is None:
        raise MissingData("payee bank not provided")
    return home.strip().upper() != ctx.op.payee_bank.strip().upper()


@feature("bool", "payee account is on the block list")
def payee_blocked(ctx: FeatureContext) -> object:
    blocked = ctx.need_lists().blocked_account_index
    if blocked is None:
        raise MissingData("blocked-account list not available")
    return _payee_account(ctx) in blocked


@feature("bool", "the payee's phone or a number that contacted the customer is blocked", cost=2)
def phone_blocked(ctx: FeatureContext) -> object:
    blocked = ctx.need_lists().blocked_phone_index
    if blocked is None:
        raise MissingData("blocked-phone list not available")
    phones = ctx.need_session().contact_phones
    if ctx.op.payee_phone is not None:
        phones = (*phones, ctx.op.payee_phone)
    return bool(phones) and any(normalise_phone(p) in blocked for p in phones)


@feature("bool", "an unexpired allow-list entry covers this customer and payee", cost=2)
def allow_listed(ctx: FeatureContext) -> object:
    index = ctx.need_lists().allow_index
    if index is None:
        raise MissingData("allow list not available")
    entries = index.get((ctx.need_profile().customer_id, _payee_account(ctx)))
    return entries is not None and any(e.expires_at > ctx.now for e in entries)
