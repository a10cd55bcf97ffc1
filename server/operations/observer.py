"""Ties operations to the call lifecycle."""

from __future__ import annotations

import structlog

from server.db.models import Call
from server.errors import CloudBranchError

from .service import OperationService

log = structlog.get_logger(__name__)


class OperationsObserver:
    """When the call goes active, a redirect's attempted transfer becomes a pending
    operation (risk-checked at once, shown to the desk); when the conversation
    ends, operations still waiting for review or confirmation are closed."""

    def __init__(self, operations: OperationService) -> None:
        self.operations = operations

    async def call_accepted(self, call: Call) -> None:
        return None

    async def call_active(self, call: Call) -> None:
        redirect = (call.context or {}).get("redirect")
        transfer = redirect.get("transfer") if isinstance(redirect, dict) else None
        if not isinstance(transfer, dict):
            return
        try:
            await self.operations.start_from_redirect(call, transfer)
        except CloudBranchError as exc:
            # A context the engine cannot take must not break the call; the desk
            # can still start the transfer by hand.
            log.warning("operations.redirect_transfer_refused", call_id=call.call_id, code=exc.code)

    async def conversation_ended(self, call: Call) -> None:
        await self.operations.call_ended(call)
