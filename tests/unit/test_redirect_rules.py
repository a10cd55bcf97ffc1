"""Redirect rules without I/O: the body's shape, ticket refusals and expiry, the audit budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from server.errors import Conflict, Forbidden, NotFound
from server.http.problems import status_of
from server.redirects.schemas import RedirectRequest, TransferOverLimit, context_json
from server.redirects.throttle import AuditBudget
from server.redirects.tickets import (
    PRIORITY,
    TRANSFER_FIELDS,
    Refusal,
    StoredRedirect,
    call_context,
    deep_link,
    expiry,
    looks_like_ticket,
    new_ticket,
    refusal,
    rfc3339,
    same_event,
)
from server.routing.model import PriorityClass

NOW = 1_700_000_000.0
TRANSFER = {
    "amount": "50000",
    "currency": "CNY",
    "payee_account": "6222020200112233445",
    "payee_name": "王小明",
    "payee_bank": "中国工商银行",
}


def parse(body: dict[str, Any]) -> Any:
    return RedirectRequest.model_validate(body).root


def transfer(**context: Any) -> dict[str, Any]:
    return {
        "event_id": "evt-1",
        "customer_id": "C1001",
        "kind": "transfer_over_limit",
        "context": {**TRANSFER, **context},
    }


# --------------------------------------------------------------------------- body shape


def test_a_transfer_context_is_validated_and_money_normalised() -> None:
    event = parse(transfer(daily_limit="20000", attempted_at="2026-01-02T09:30:00+08:00"))
    assert isinstance(event, TransferOverLimit)
    stored = context_json(event)
    assert stored["amount"] == "50000.00"
    assert stored["daily_limit"] == "20000.00"
    assert stored["attempted_at"] == "2026-01-02T01:30:00Z"
    assert "channel" not in stored  # unset optional fields are not stored


def test_a_password_lock_context_is_optional_in_every_field() -> None:
    event = parse({"event_id": "e", "customer_id": "C1", "kind": "password_locked", "context": {}})
    assert context_json(event) == {}
    full = parse(
        {
            "event_id": "e",
            "customer_id": "C1",
            "kind": "password_locked",
            "context": {"failed_attempts": 5, "locked_at": "2026-01-02T01:00:00Z"},
        }
    )
    assert context_json(full) == {"failed_attempts": 5, "locked_at": "2026-01-02T01:00:00Z"}


@pytest.mark.parametrize(
    "body",
    [
        {**transfer(), "kind": "card_lost"},
        {k: v for k, v in transfer().items() if k != "kind"},
        {k: v for k, v in transfer().items() if k != "context"},
        {**transfer(), "context": "text"},
        {**transfer(), "event_id": ""},
        {**transfer(), "event_id": "e" * 65},
        {**transfer(), "event_id": "has space"},
        {**transfer(), "customer_id": "C" * 33},
        {**transfer(), "extra": 1},
        transfer(amount=50000),  # money is a decimal string
        transfer(amount="0"),
        transfer(amount="-5"),
        transfer(amount="1.234"),
        transfer(amount="1e5"),
        transfer(amount="NaN"),
        transfer(amount="100000000.01"),
        transfer(amount=""),
        transfer(currency="cny"),
        transfer(currency="CNYX"),
        transfer(payee_account="6222 0202"),
        transfer(payee_account="ABC123456"),
        transfer(payee_account="12345"),
        transfer(payee_name=""),
        transfer(payee_name="   "),
        transfer(payee_name="x" * 101),
        transfer(payee_bank="b" * 65),
        transfer(attempted_at="2026-01-02T09:30:00"),  # no zone: ambiguous
        transfer(channel="fax"),
        transfer(note="anything else"),
        {k: v for k, v in transfer().items() if k != "context"} | {"context": {"amount": "5"}},
        {
            "event_id": "e",
            "customer_id": "C1",
            "kind": "password_locked",
            "context": {"failed_attempts": "5"},
        },
        {
            "event_id": "e",
            "customer_id": "C1",
            "kind": "password_locked",
            "context": {"failed_attempts": 0},
        },
        {"event_id": "e", "customer_id": "C1", "kind": "password_locked", "context": TRANSFER},
    ],
)
def test_malformed_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(body)


def test_every_redirected_transfer_is_a_valid_transfer_operation() -> None:
    from server.operations.params import parse_params
    from server.operations.state import Kind

    event = parse(transfer(amount="100000000"))
    stored = StoredRedirect(
        "evt-1", "C1001", event.kind, context_json(event), "t" * 43, _dt(NOW), _dt(NOW + 60), False
    )
    params = call_context(stored)["redirect"]["transfer"]
    assert parse_params(Kind.TRANSFER, params)["payee_account"] == TRANSFER["payee_account"]


# --------------------------------------------------------------------------- tickets


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def stored(customer_id: str = "C1001", used: bool = False, ttl: float = 1800) -> StoredRedirect:
    return StoredRedirect(
        event_id="evt-1",
        customer_id=customer_id,
        kind="transfer_over_limit",
        context={**TRANSFER, "amount": "50000.00"},
        ticket="t" * 43,
        created_at=_dt(NOW),
        expires_at=expiry(NOW, ttl),
        used=used,
    )


def test_refusals_in_order() -> None:
    assert refusal(None, "C1001", NOW) is Refusal.NOT_FOUND
    assert refusal(stored(), "C1001", NOW) is None
    # Ownership first: a stranger learns nothing of the ticket's state.
    assert refusal(stored(used=True), "C1002", NOW + 10_000) is Refusal.NOT_YOURS
    assert refusal(stored(used=True), "C1001", NOW + 10_000) is Refusal.USED
    assert refusal(stored(), "C1001", NOW + 10_000) is Refusal.EXPIRED


def test_a_ticket_expires_exactly_at_its_expiry() -> None:
    assert refusal(stored(ttl=60), "C1001", NOW + 59.999) is None
    assert refusal(stored(ttl=60), "C1001", NOW + 60) is Refusal.EXPIRED


@pytest.mark.parametrize(
    ("reason", "kind", "status", "code"),
    [
        (Refusal.NOT_FOUND, NotFound, 404, "ticket_not_found"),
        (Refusal.NOT_YOURS, Forbidden, 403, "ticket_not_yours"),
        (Refusal.USED, Conflict, 409, "ticket_used"),
        (Refusal.EXPIRED, Conflict, 409, "ticket_expired"),
    ],
)
def test_each_refusal_is_a_problem(reason: Refusal, kind: type, status: int, code: str) -> None:
    error = reason.error()
    assert isinstance(error, kind) and status_of(error) == status and error.code == code


def test_what_a_ticket_grants() -> None:
    assert PRIORITY == {
        "transfer_over_limit": PriorityClass.URGENT,
        "password_locked": PriorityClass.REDIRECT,
    }
    context = call_context(stored())
    redirect = context["redirect"]
    assert redirect["kind"] == "transfer_over_limit"
    assert redirect["event_id"] == "evt-1"
    assert redirect["received_at"] == rfc3339(_dt(NOW))
    assert redirect["transfer"] == {k: stored().context[k] for k in TRANSFER_FIELDS}
    locked = StoredRedirect("e2", "C1", "password_locked", {}, "t" * 43, _dt(NOW), _dt(NOW), False)
    assert "transfer" not in call_context(locked)["redirect"]


def test_a_repeat_is_the_same_event_only_if_everything_matches() -> None:
    s = stored()
    assert same_event(s, "C1001", s.kind, dict(reversed(list(s.context.items()))))
    assert not same_event(s, "C1002", s.kind, s.context)
    assert not same_event(s, "C1001", "password_locked", s.context)
    assert not same_event(s, "C1001", s.kind, {**s.context, "amount": "50001.00"})


def test_tickets_links_and_times() -> None:
    ticket = new_ticket()
    assert looks_like_ticket(ticket) and len(ticket) <= 64 and ticket != new_ticket()
    for junk in ("", "short", "x" * 65, "a/b" * 10, "t" * 30 + "\x00"):
        assert not looks_like_ticket(junk)
    assert deep_link("cloudbranch://call", "abc") == "cloudbranch://call?ticket=abc"
    assert deep_link("https://b.example/open?src=m", "a-b_c") == (
        "https://b.example/open?src=m&ticket=a-b_c"
    )
    assert rfc3339(_dt(NOW + 0.9)) == "2023-11-14T22:13:20Z"
    assert expiry(NOW, 1800) == _dt(NOW + 1800)


# --------------------------------------------------------------------------- audit budget


def test_the_audit_budget_counts_what_it_leaves_out() -> None:
    budget = AuditBudget(per_window=2, window_s=60)
    assert budget.admit(0) == 0
    assert budget.admit(1) == 0
    assert budget.admit(2) is None
    assert budget.admit(59) is None
    assert budget.admit(60) == 2  # a new window; the next entry says two were left out
    assert budget.admit(61) == 0
