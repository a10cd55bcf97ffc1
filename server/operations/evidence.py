"""What the operation layer adds to an operation's params when it executes.

A pension certification is done for the customer in the call: its evidence is
the specialist's attestation, the call, and the call's recording at that
moment (a ``pension_attested`` marker at its media time). Once a liveness
challenge runs in the call, its result joins the evidence; until then
``liveness`` is None and the method is ``specialist_attestation``. A
certificate is filed under the call it was asked for in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import Operation
from server.recordings.index import add_marker
from server.recordings.models import Recording

from .state import Kind


async def pension_evidence(session: AsyncSession, op: Operation, now: float) -> dict[str, Any]:
    """The attestation and its markers; the marker itself is added in this transaction."""
    recording = await session.get(Recording, op.call_id)
    marked = await add_marker(
        session,
        op.call_id,
        "pension_attested",
        now,
        op.operation_id,
        {"attested_by": op.specialist_id},
    )
    recorded = None
    if recording is not None:
        recorded = {
            "state": recording.state,
            "healthy": recording.healthy,
            "at_s": round(max(now - recording.started_at.timestamp(), 0.0), 3),
            "marker": "pension_attested" if marked else None,
        }
    return {
        "method": "specialist_attestation",
        "attested_by": op.specialist_id,
        "call_id": op.call_id,
        "recording": recorded,
        "liveness": None,
    }


async def execution_params(session: AsyncSession, op: Operation, now: float) -> dict[str, Any]:
    """``op.params``, and for the kinds that need it a ``context`` the ledger files."""
    if op.kind == Kind.PENSION_CERTIFICATION.value:
        evidence = await pension_evidence(session, op, now)
        return {**op.params, "context": {"call_id": op.call_id, "evidence": evidence}}
    if op.kind == Kind.CERTIFICATE.value:
        return {**op.params, "context": {"call_id": op.call_id}}
    return dict(op.params)
