"""Features about when and in what order: recent transfers, the local hour,
account events before this operation, and what this call has already tried."""

from __future__ import annotations

from datetime import timedelta

from risk.features import (
    FeatureContext,
    MissingData,
    _baseline,
    _hours_since,
    feature,
    to_cny,
)

_PASSWORD_RESET = frozenset({"password_reset"})
_LIMIT_RAISE = frozenset({"limit_change"})
_DEPOSIT_BREAK = frozenset({"time_deposit_break"})
_NEW_DEVICE = frozenset({"new_device"})
_STOPPED = frozenset({"held", "blocked", "rejected"})


@feature(
    "number",
    "transfers in the last 24 h before this one (executed, plus stopped attempts in this call)",
    cost=3,
)
def velocity_count_24h(ctx: FeatureContext) -> object:
    return _velocity(ctx)[0]


@feature("number", "sum in CNY of the last 24 h of transfers, including this one", cost=3)
def velocity_sum_24h_cny(ctx: FeatureContext) -> object:
    return _velocity(ctx)[1] + ctx.number("amount_cny")


def _velocity(ctx: FeatureContext) -> tuple[int, float]:
    cached = ctx.values.get("_velocity")
    if isinstance(cached, tuple):
        return cached
    habits = ctx.need_profile().habits
    if habits is None:
        raise MissingData("transaction history not provided")
    earlier = ctx.need_session().earlier_operations
    if earlier is None:
        raise MissingData("earlier operations in this call not provided")
    start = ctx.now - timedelta(hours=24)
    count = 0
    total = 0.0
    # Executed transfers reach the habit profile through the ledger; attempts
    # that were stopped in this call do not, but still show intent.
    for t in habits.since(start, ctx.now):
        count += 1
        total += float(t.amount)
    for op in earlier:
        if op.kind == "transfer" and op.outcome in _STOPPED and op.at > start:
            count += 1
            total += to_cny(ctx.params, op.amount, op.currency, "earlier amount")
    result = (count, total)
    ctx.values["_velocity"] = result
    return result


@feature("number", "hour of day in the customer's local time (0-23)")
def local_hour(ctx: FeatureContext) -> object:
    local = ctx.need_session().local_time
    if local is None:
        raise MissingData("customer's local time not provided")
    return local.hour


@feature("bool", "the local hour is outside the customer's (or peer group's) usual hours", cost=2)
def hour_unusual(ctx: FeatureContext) -> object:
    hour = ctx.number("local_hour")
    return int(hour) not in _baseline(ctx).usual_hours


@feature("number", "hours since the last password reset; inf if none", cost=2)
def hours_since_password_reset(ctx: FeatureContext) -> object:
    return _hours_since(ctx, _PASSWORD_RESET)


@feature("number", "hours since the last limit change (event or in this call); inf if none", cost=2)
def hours_since_limit_raise(ctx: FeatureContext) -> object:
    return _hours_since(ctx, _LIMIT_RAISE)


@feature("number", "hours since a time deposit was broken early; inf if none", cost=2)
def hours_since_deposit_break(ctx: FeatureContext) -> object:
    return _hours_since(ctx, _DEPOSIT_BREAK)


@feature("number", "hours since a new device was bound; inf if none", cost=2)
def hours_since_new_device(ctx: FeatureContext) -> object:
    return _hours_since(ctx, _NEW_DEVICE)


@feature("number", "operations in this call that were held, blocked or rejected")
def stopped_in_call(ctx: FeatureContext) -> object:
    earlier = ctx.need_session().earlier_operations
    if earlier is None:
        raise MissingData("earlier operations in this call not provided")
    return sum(1 for op in earlier if op.outcome in _STOPPED)


@feature("str", "redirect that opened the call ('none' if the customer called directly)")
def redirect_kind(ctx: FeatureContext) -> object:
    return ctx.need_session().redirect_kind or "none"
