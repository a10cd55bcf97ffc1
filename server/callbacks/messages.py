"""Server → customer WebSocket messages about callbacks, and their plain words.

``queue.update`` gains ``callback_available`` (and, when true, ``callback_message``);
the ringing app gets ``callback.ringing`` and, when the ring is over without an
answer (declined, not answered in time, cancelled), ``callback.ring_ended``.
"""

from __future__ import annotations

from server.hub.callback_messages import CallbackRingEnded as CallbackRingEnded
from server.hub.callback_messages import CallbackRinging as CallbackRinging
from server.hub.callback_messages import RingEndReason as RingEndReason
from server.hub.callback_messages import Words
from server.local_hours import LocalHours


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
