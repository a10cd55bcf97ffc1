"""Who may fetch a produced document, and the audited fetch itself.

The customer fetches their own documents; the specialist who held the call it
was produced in fetches it too; supervisors may. Anyone else is told there is
no such document (404), exactly as for an id that does not exist. Every fetch
is an audit entry, and the bytes are checked against the SHA-256 recorded when
the document was stored, so an altered file is never handed out.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.auth.principal import Principal, Role
from server.banking.core import iso
from server.banking.documents import DocumentStore
from server.db.banking import Document
from server.db.models import Call
from server.errors import NotFound, ServiceUnavailable


def _not_found(document_id: str) -> NotFound:
    return NotFound(f"no document {document_id[:40]!r} for you", code="document_not_found")


async def _visible(session: AsyncSession, principal: Principal, document_id: str) -> Document:
    plausible = len(document_id) <= 32 and "\x00" not in document_id
    doc = await session.get(Document, document_id) if plausible else None
    if doc is None:
        raise _not_found(document_id)
    if principal.role is Role.SUPERVISOR:
        return doc
    if principal.role is Role.CUSTOMER and doc.customer_id == principal.subject:
        return doc
    if principal.role is Role.SPECIALIST and doc.call_id is not None:
        call = await session.get(Call, doc.call_id)
        if call is not None and call.specialist_id == principal.subject:
            return doc
    raise _not_found(document_id)


def document_view(doc: Document) -> dict[str, Any]:
    return {
        "document_id": doc.document_id,
        "operation_id": doc.operation_id,
        "call_id": doc.call_id,
        "kind": doc.kind,
        "filename": doc.filename,
        "sha256": doc.sha256,
        "size": doc.size,
        "created_at": iso(doc.created_at),
        "url": f"/api/v1/documents/{doc.document_id}/pdf",
    }


class Documents:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: DocumentStore) -> None:
        self.sessions = sessions
        self.store = store

    async def describe(self, principal: Principal, document_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            return document_view(await _visible(session, principal, document_id))

    async def fetch(self, principal: Principal, document_id: str) -> tuple[Document, bytes]:
        """The document's bytes, checked against its recorded hash; the fetch is audited."""
        async with self.sessions() as session:
            doc = await _visible(session, principal, document_id)
            try:
                data = await self.store.get(doc.storage_key)
            except OSError as exc:
                raise ServiceUnavailable("the document store cannot be read right now") from exc
            if hashlib.sha256(data).hexdigest() != doc.sha256:
                raise ServiceUnavailable("the stored document does not match its recorded hash")
            await audit.record(
                session,
                "document.accessed",
                at=time.time(),
                actor_role=principal.role.value,
                actor_id=principal.subject,
                subject_type="document",
                subject_id=doc.document_id,
                data={"sha256": doc.sha256},
            )
            await session.commit()
            return doc, data
