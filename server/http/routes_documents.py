"""HTTP endpoints: documents produced in calls (certificates, statements) as PDF."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from server.appkeys import CALLS
from server.auth.principal import Role
from server.banking.documents import DOCUMENTS
from server.operations.documents import Documents

from .registry import RouteContext, registry
from .respond import json_response

C, S, V = Role.CUSTOMER.value, Role.SPECIALIST.value, Role.SUPERVISOR.value


class DocumentResponse(BaseModel):
    document_id: str
    operation_id: str
    call_id: str | None
    kind: str
    filename: str
    sha256: str
    size: int
    created_at: str
    url: str


def _documents(app: web.Application) -> Documents:
    return Documents(app[CALLS].sessions, app[DOCUMENTS])


@registry.route(
    "GET",
    "/api/v1/documents/{document_id}",
    "A document produced in a call: its kind, SHA-256 (as in the audit chain) and link",
    roles=(C, S, V),
    response=DocumentResponse,
    errors=(401, 404),
    tag="operations",
)
async def get_document(ctx: RouteContext[None]) -> web.Response:
    view = await _documents(ctx.app).describe(ctx.principal, ctx.path("document_id"))
    return json_response(view)


@registry.route(
    "GET",
    "/api/v1/documents/{document_id}/pdf",
    "The document itself (application/pdf), checked against its recorded SHA-256",
    roles=(C, S, V),
    errors=(401, 404, 503),
    tag="operations",
)
async def get_document_pdf(ctx: RouteContext[None]) -> web.Response:
    doc, data = await _documents(ctx.app).fetch(ctx.principal, ctx.path("document_id"))
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{doc.filename}"',
            "Cache-Control": "no-store",
        },
    )
