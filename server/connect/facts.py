"""Everything a customer's hello needs, read in one statement for many hellos at once.

A thousand apps reconnecting at once must not take a thousand pooled connections
(nor five each, one per hook): each hello asks :class:`HelloReads` for its
customer's :class:`CustomerFacts`, and the hellos waiting meanwhile are read
together (:class:`~server.batched.BatchedReads`), up to ``batch`` customers
per statement, by at most ``readers`` statements at a time.

One statement gives, per customer: the open call (state, specialist, whether a
callback may be offered), the customer's contact flags (for the callback offer
in ``queue.update``), the callbacks ringing now, and, only when no call is open,
their latest call that failed within the notice window (``call.ended`` once).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.batched import BatchedReads
from server.callbacks.offers import OfferFacts
from server.callbacks.state import CallbackState
from server.callbacks.views import timestamp
from server.calls.state import CUSTOMER_OPEN, CallState
from server.db.banking import Callback
from server.db.models import Call, CallEvent, Customer
from server.media.coordinator import FAILED_NOTICE_EVENT, latest_failed_call


@dataclass(frozen=True, slots=True)
class OpenCall:
    call_id: str
    state: CallState
    specialist_id: str | None
    callback_allowed: bool


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """One customer, as their hello needs them."""

    call: OpenCall | None
    contact_consent: bool
    do_not_call: bool
    # (callback id, ring ends at), oldest request first.
    ringing: tuple[tuple[str, float | None], ...]
    # Their latest call that failed within the notice window, if they were not
    # told yet; read only when no call is open (a customer waiting again needs no
    # news of the last one).
    failed_call_id: str | None

    def offer_facts(self) -> OfferFacts | None:
        """What the callback offer in ``queue.update`` is decided on."""
        if self.call is None:
            return None
        call = self.call
        return (call.state.value, call.callback_allowed, self.contact_consent, self.do_not_call)


UNKNOWN = CustomerFacts(None, False, False, (), None)
"""A subject with no customer row: nothing open, nothing ringing."""


class HelloReads:
    """Batched reads of :class:`CustomerFacts` (:class:`~server.batched.BatchedReads`);
    each waiting hello is one key."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        batch: int = 256,
        readers: int = 2,
        max_waiting: int = 20_000,
    ) -> None:
        self._sessions = sessions
        self._reads = BatchedReads(
            self._read,
            UNKNOWN,
            name="hello-reads",
            batch=batch,
            readers=readers,
            max_waiting=max_waiting,
        )

    async def of_customer(self, customer_id: str) -> CustomerFacts:
        return await self._reads.of(customer_id)

    async def _read(self, customer_ids: Sequence[str]) -> dict[str, CustomerFacts]:
        async with self._sessions() as session:
            rows = (await session.execute(_statement(customer_ids, time.time()))).all()
        return _facts(rows)

    async def stop(self) -> None:
        """Stop the reads under way; hellos still waiting are cancelled."""
        await self._reads.stop()


_OPEN = [s.value for s in CUSTOMER_OPEN]


def _statement(customer_ids: Sequence[str], now: float) -> Any:
    latest_failed = (
        latest_failed_call(Customer.customer_id, now).correlate(Customer).scalar_subquery()
    )
    # Told once: a failed call the customer was already told of needs no notice.
    told = exists().where(CallEvent.call_id == latest_failed, CallEvent.kind == FAILED_NOTICE_EVENT)
    return (
        select(
            Customer.customer_id,
            Customer.contact_consent,
            Customer.do_not_call,
            Call.call_id,
            Call.state,
            Call.specialist_id,
            Call.callback_allowed,
            Callback.callback_id,
            Callback.next_attempt_at,
            # CASE: the failed-call lookup runs only for customers with no open call.
            case((Call.call_id.is_(None), case((~told, latest_failed), else_=None)), else_=None),
        )
        .select_from(Customer)
        .outerjoin(Call, and_(Call.customer_id == Customer.customer_id, Call.state.in_(_OPEN)))
        .outerjoin(
            Callback,
            and_(
                Callback.customer_id == Customer.customer_id,
                Callback.state == CallbackState.RINGING.value,
            ),
        )
        .where(Customer.customer_id.in_(customer_ids))
        .order_by(Callback.original_enqueued_at)
    )


def _facts(rows: Sequence[Any]) -> dict[str, CustomerFacts]:
    found: dict[str, CustomerFacts] = {}
    for row in rows:
        customer_id, consent, dnc, call_id, state, specialist, allowed, cb_id, cb_at, failed = row
        known = found.get(customer_id)
        ringing = known.ringing if known is not None else ()
        if cb_id is not None:
            ringing = (*ringing, (cb_id, timestamp(cb_at)))
        call = (
            OpenCall(call_id, CallState(state), specialist, bool(allowed))
            if call_id is not None
            else None
        )
        found[customer_id] = CustomerFacts(call, bool(consent), bool(dnc), ringing, failed)
    return found
