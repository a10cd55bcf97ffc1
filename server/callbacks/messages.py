"""Server → customer WebSocket messages about callbacks, and their plain words.

``queue.update`` gains ``callback_available`` (and, when true, ``callback_message``);
the ringing app gets ``callback.ringing`` and, when the ring is over without an
answer (declined, not answered in time, cancelled), ``callback.ring_ended``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from .policy import LocalHours


class Words(BaseModel):
    zh: str
    en: str


class CallbackRinging(BaseModel):
    type: Literal["callback.ringing"] = "callback.ringing"
    callback_id: str
    # The call does not exist yet: it is created when the customer answers.
    call_id: None = None
    expires_in_s: float
    message: Words


RingEndReason = Literal["declined", "no_answer", "cancelled"]


class CallbackRingEnded(BaseModel):
    type: Literal["callback.ring_ended"] = "callback.ring_ended"
    callback_id: str
    reason: RingEndReason
    next_attempt_at: str | None = None


def offer_words(hours: LocalHours) -> Words:
    """The option shown while waiting, with the hours we call in."""
    start, end = hours.describe().split("-")
    return Words(
        zh=(
            "现在排队的人比较多。您可以先挂断，轮到您时我们会在手机银行里给您回电，"
            f"您的排队位置不变。我们只在每天{start}到{end}之间回电。"
        ),
        en=(
            "The wait is long. You can hang up now and we will call you back in the app "
            f"when it is your turn, keeping your place. We only call between {start} and {end}."
        ),
    )


RINGING_WORDS = Words(
    zh="您好，这里是云网点，给您回电了。请点“接听”，马上为您接通服务专员。",
    en="Hello, this is the Cloud Branch calling you back. Tap Answer to talk to a specialist.",
)
