"""The small calls the rest of the server makes into recording.

- :func:`require_recording`: operations that need a recording are refused,
  ``409 recording_unavailable``, while the call's recording is down;
- :func:`mark_operation_event`: the moments that matter in an operation become
  markers at their media time, in the same transaction as their audit entry;
- :func:`send_notice`: both parties are told, in plain words, that the call is
  recorded, and that they were told is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.auth.principal import Role
from server.db.models import Call
from server.errors import Conflict
from server.settings import Settings

from .index import add_marker
from .models import Recording
from .service import recording_applies

if TYPE_CHECKING:
    from server.ports import Notifier

NOTICE = {
    "zh": "温馨提示：为保障您的资金安全，本次视频通话将全程录音录像，并加密保存。",
    "en": "Please note: to keep your money safe, this video call is being recorded "
    "(sound and picture) and the recording is stored encrypted.",
}

UNAVAILABLE_DETAIL = (
    "this call is not being recorded right now, and a {kind} needs a recording; "
    "the call can go on, and the {kind} can be started again once recording is back"
)


async def require_recording(
    session: AsyncSession, settings: Settings, call_id: str, kind: str
) -> None:
    """Refuse an operation that needs a recording while the call's recording is down."""
    if not recording_applies(settings) or kind not in settings.recording_required_operations:
        return
    row = await session.get(Recording, call_id)
    if row is None or row.state != "recording" or not row.healthy:
        raise Conflict(
            UNAVAILABLE_DETAIL.format(kind=kind.replace("_", " ")),
            code="recording_unavailable",
        )


# Audit entry kind -> the markers it stands for.
_MARKERS: dict[str, tuple[str, ...]] = {
    "operation.created": ("operation_started",),
    "risk.decision": ("risk_decision",),
    "risk.warning_sent": ("warning_shown",),
    "risk.warning_shown": ("warning_acknowledged",),
    "operation.reviewed": ("review_answer",),
    "operation.refused_by_customer": ("customer_refused",),
    "operation.executed": ("customer_confirmed", "executed"),
    "operation.failed": ("customer_confirmed", "execution_failed"),
}
_KEPT = ("kind", "decision", "reason_codes", "text", "action", "answers", "reason")


async def mark_operation_event(
    session: AsyncSession, kind: str, operation_id: str, now: float, data: dict[str, Any] | None
) -> None:
    """Markers for an operation's audit entry, if its call is recorded (same transaction)."""
    markers = _MARKERS.get(kind)
    if not markers:
        return
    from server.db.banking import Operation

    op = await session.get(Operation, operation_id)
    if op is None:
        return
    kept = {k: v for k, v in (data or {}).items() if k in _KEPT}
    for marker in markers:
        if marker == "customer_confirmed" and not op.confirmation:
            continue  # executed without a confirmation (a balance inquiry)
        await add_marker(session, op.call_id, marker, now, operation_id, kept)


async def send_notice(
    hub: Notifier, sessions: async_sessionmaker[AsyncSession], call: Call, now: float
) -> None:
    """``media.notice`` to both parties at media start; the sending is recorded."""
    message = {
        "type": "media.notice",
        "call_id": call.call_id,
        "recording": True,
        "message": NOTICE,
    }
    told = []
    for role, subject in ((Role.CUSTOMER, call.customer_id), (Role.SPECIALIST, call.specialist_id)):
        if subject is None:
            continue
        await hub.send(role, subject, message)
        told.append(role.value)
    async with sessions() as session:
        await audit.record(
            session,
            "recording.notice_sent",
            at=now,
            subject_type="call",
            subject_id=call.call_id,
            data={"to": told, "message": NOTICE},
        )
        await add_marker(session, call.call_id, "recording_notice", now, None, {"to": told})
        await session.commit()
