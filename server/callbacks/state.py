"""The callback's states and the outcomes of its attempts, as pure data.

Every change of state is applied as one conditional ``UPDATE ... WHERE state IN
(sources)`` (see :mod:`.repository`), so when two nodes race on the same callback
exactly one of them wins and records the attempt.
"""

from __future__ import annotations

import enum


class CallbackState(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting for its turn (or for the next allowed time)
    RINGING = "ringing"  # the customer's app is ringing
    CONNECTED = "connected"  # answered: a new call holds the original place
    CANCELLED = "cancelled"  # by the customer, or consent / do-not-call
    FAILED = "failed"  # gave up: not answered within the allowed days


OPEN = frozenset({CallbackState.SCHEDULED, CallbackState.RINGING})


class AttemptOutcome(enum.StrEnum):
    """One line of a callback's attempt log (``callback_attempts.outcome``)."""

    RANG = "rang"
    ANSWERED = "answered"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"
    SKIPPED_OUTSIDE_HOURS = "skipped_outside_hours"
    SKIPPED_NO_CONSENT = "skipped_no_consent"
    SKIPPED_DO_NOT_CALL = "skipped_do_not_call"
    SKIPPED_DAILY_LIMIT = "skipped_daily_limit"


class Outcome(enum.StrEnum):
    """Why a callback closed (``callbacks.outcome``)."""

    ANSWERED = "answered"
    CANCELLED_BY_CUSTOMER = "cancelled_by_customer"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    DO_NOT_CALL = "do_not_call"
    CUSTOMER_CALLED_IN = "customer_called_in"
    GAVE_UP = "gave_up"
