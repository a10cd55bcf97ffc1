"""What the operation layer adds to an operation's params when it executes.

A pension certification is done for the customer in the call: its evidence is
the specialist's attestation, the call, and the call's recording at that
moment (a ``pension_attested`` marker at its media time). Starting one sends the
customer a liveness challenge (``liveness_before`` lists the kind by default);
the call's latest liveness result at execution (``passed``/``failed``) joins the
evidence, and the method says whether one backed the attestation. Without
analysed video (direct media) ``liveness`` is None and the method is the
specialist's attestation alone. A certificate is filed under the call it was
asked for in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import Operation
from server.recordings.index import add_marker
from server.recordings.models import Recording

from .state import Kind


async def pension_evidence(
    session: AsyncSession, op: Operation, now: float, liveness: str | None = None
) -> dict[str, Any]:
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
    method = "specialist_attestation" if liveness is None else "attestation_with_liveness"
    return {
        "method": method,
        "attested_by": op.specialist_id,
        "call_id": op.call_id,
        "recording": recorded,
        "liveness": liveness,
    }


async def execution_params(
    session: AsyncSession, op: Operation, now: float, liveness: str | None = None
) -> dict[str, Any]:
    """``op.params``, and for the kinds that need it a ``context`` the ledger files.

    ``liveness`` is the call's latest liveness result, or None when none ran."""
    if op.kind == Kind.PENSION_CERTIFICATION.value:
        evidence = await pension_evidence(session, op, now, liveness)
        return {**op.params, "context": {"call_id": op.call_id, "evidence": evidence}}
    if op.kind == Kind.CERTIFICATE.value:
        return {**op.params, "context": {"call_id": op.call_id}}
    return dict(op.params)
