"""The generated blocks of ``docs/contract.md``: routes, bodies, socket messages,
close codes and error codes, from the same registry and models the server runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from server.hub import connection

# What each close code means to a client. A CLOSE_* constant without a line here
# stops the generator, so a new close code cannot go undocumented.
CLOSE_CODE_MEANINGS = {
    "CLOSE_SHUTDOWN": "the node is shutting down; reconnect (with back-off) and send `hello`",
    "CLOSE_UNAUTHORIZED": "no `hello` within the hello timeout, or its token was refused; "
    "get a fresh token before reconnecting",
    "CLOSE_FORBIDDEN": "the token's role may not use the socket this way",
    "CLOSE_SLOW_CONSUMER": "the client did not keep up with its messages (send queue full); "
    "reconnect",
    "CLOSE_REPLACED": "a newer socket of the same user said `hello`; do not reconnect, "
    "the newer one is live",
    "CLOSE_SERVICE_RESTART": "the node is draining (rolling upgrade): reconnect at once, "
    "another node takes the socket; the call and its place are kept",
}

# Routes served outside the registry, and what they are.
OTHER_ROUTES = {
    "/api/v1/ws": "the WebSocket: `hello` first, then the messages below",
    "/api/v1/openapi.json": "this HTTP API as OpenAPI 3.1, from the same route registry",
    "/api/v1/schemas/ws.json": "the WebSocket messages as JSON Schema, both directions",
    "/": "the list of pages (development mode only)",
    "/web/config.json": "what the pages need to know of the server (`dev_mode`)",
    "/desk": "the specialist desk page",
    "/supervisor": "the supervisor wallboard page",
    "/app": "the senior-edition reference app page",
    "/desk/{name}": "the specialist desk page and its files",
    "/supervisor/{name}": "the supervisor wallboard page and its files",
    "/app/{name}": "the senior-edition reference app page and its files",
    "/common": "the scripts and styles the pages share",
    "/common/{name}": "the scripts and styles the pages share",
}


def build_app() -> web.Application:
    """The application as ``cloudbranch serve`` builds it (nothing is started)."""
    from server.app import create_app
    from server.settings import Settings

    settings = Settings(dev_mode=True, database_url="sqlite+aiosqlite://", log_level="WARNING")
    return create_app(settings)


def blocks(root: Path) -> dict[str, str]:
    from server.docs.error_codes import error_codes
    from server.http.openapi import openapi_document
    from server.hub.protocol import ws_schema

    app = build_app()
    document = openapi_document()
    schema = ws_schema()
    return {
        "http-endpoints": _endpoints(app, document),
        "http-bodies": _bodies(document["components"]["schemas"]),
        "ws-messages": _ws_messages(schema),
        "close-codes": _close_codes(),
        "error-codes": _error_codes(error_codes(root)),
    }


# -- HTTP ------------------------------------------------------------------------------


def _endpoints(app: web.Application, document: dict[str, Any]) -> str:
    rows = ["| method | path | roles | body | answer | problems | what |", "| --- " * 7 + "|"]
    documented: set[tuple[str, str]] = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            documented.add((method.upper(), path))
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            answers = operation["responses"]
            ok = [status for status in answers if str(status).startswith("2")]
            ok_schema = answers[ok[0]].get("content", {}).get("application/json", {})
            problems = [status for status in answers if status not in ok]
            rows.append(
                _row(
                    method.upper(),
                    f"`{path}`",
                    ", ".join(operation.get("x-roles", [])) or "public",
                    _ref_name(body.get("schema")),
                    " ".join(ok) + (f" {_ref_name(ok_schema.get('schema'))}" if ok_schema else ""),
                    ", ".join(problems),
                    operation["summary"],
                )
            )
    others = []
    for route in app.router.routes():
        resource = route.resource
        if route.method == "HEAD" or resource is None:
            continue
        key = (route.method, resource.canonical)
        if key in documented:
            continue
        meaning = OTHER_ROUTES.get(resource.canonical) or _first_doc_line(route.handler)
        if not meaning:
            raise KeyError(f"route {key} is in neither the registry nor OTHER_ROUTES")
        others.append(f"- `{route.method} {resource.canonical}`: {meaning}")
    return "\n".join(rows) + "\n\nServed beside the registry:\n\n" + "\n".join(sorted(others))


def _first_doc_line(handler: Callable[..., Any]) -> str:
    doc = (handler.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _bodies(schemas: dict[str, Any]) -> str:
    parts = []
    for name in sorted(schemas):
        parts.append(f"**{name}**" + _object_fields(schemas[name]))
    return "\n\n".join(parts)


# -- WebSocket -------------------------------------------------------------------------


def _ws_messages(schema: dict[str, Any]) -> str:
    out = []
    shared: dict[str, Any] = {}
    for direction, title in (
        ("client_to_server", "Client → server"),
        ("server_to_client", "Server → client"),
    ):
        part = schema[direction]
        defs = part.get("$defs", {})
        refs = [str(m["$ref"]).rsplit("/", 1)[-1] for m in part.get("oneOf", part.get("anyOf", []))]
        members = [_short(ref) for ref in refs]
        rows = ["| type | fields |", "| --- | --- |"]
        for ref in refs:
            body = defs[ref]
            kind = body["properties"]["type"].get("const") or body["properties"]["type"].get(
                "default"
            )
            fields = [
                _field(name, spec, name in body.get("required", []))
                for name, spec in body["properties"].items()
                if name != "type"
            ]
            rows.append(_row(f"`{kind}`", ", ".join(fields) or "—"))
        out.append(f"{title}:\n\n" + "\n".join(rows))
        shared.update({_short(k): v for k, v in defs.items() if _short(k) not in members})
    objects = [f"**{name}**" + _object_fields(shared[name]) for name in sorted(shared)]
    return "\n\n".join(out) + "\n\nObjects inside messages:\n\n" + "\n\n".join(objects)


def _close_codes() -> str:
    constants = {
        name: value
        for name, value in vars(connection).items()
        if name.startswith("CLOSE_") and isinstance(value, int)
    }
    missing = sorted(set(constants) - set(CLOSE_CODE_MEANINGS))
    if missing:
        raise KeyError(f"close codes without a meaning in CLOSE_CODE_MEANINGS: {missing}")
    rows = ["| code | meaning |", "| --- | --- |"]
    for name, value in sorted(constants.items(), key=lambda item: item[1]):
        rows.append(_row(f"`{value}`", CLOSE_CODE_MEANINGS[name]))
    return "\n".join(rows)


def _error_codes(codes: list[Any]) -> str:
    rows = ["| code | answer | raised in |", "| --- | --- | --- |"]
    for item in codes:
        answer = "WebSocket `error`" if item.answer == "socket" else item.answer
        rows.append(_row(f"`{item.code}`", answer, item.module))
    return "\n".join(rows)


# -- JSON Schema as text ---------------------------------------------------------------


def _object_fields(body: dict[str, Any]) -> str:
    properties = body.get("properties")
    if not properties:
        return ": " + _type(body)
    required = body.get("required", [])
    fields = [_field(name, spec, name in required) for name, spec in properties.items()]
    return ": " + ", ".join(fields)


def _field(name: str, spec: dict[str, Any], required: bool) -> str:
    return f"`{name}`{'' if required else '?'} {_type(spec)}"


def _ref_name(spec: dict[str, Any] | None) -> str:
    if not spec:
        return ""
    ref = spec.get("$ref", "")
    return _short(str(ref).rsplit("/", 1)[-1])


def _short(name: str) -> str:
    # pydantic names a model ``module__path__Name`` when two models share a name.
    return name.rsplit("__", 1)[-1]


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return _ref_name(spec)
    if "const" in spec:
        return f'`"{spec["const"]}"`'
    if "enum" in spec:
        return " or ".join(f"`{value!r}`".replace("'", '"') for value in spec["enum"])
    for union in ("anyOf", "oneOf"):
        if union in spec:
            return " or ".join(_type(option) for option in spec[union])
    kind = spec.get("type")
    if kind == "array":
        return f"list of {_type(spec['items'])}" if "items" in spec else "list"
    if kind == "object":
        extra = spec.get("additionalProperties")
        return f"map of {_type(extra)}" if isinstance(extra, dict) and extra else "object"
    return {
        "integer": "integer",
        "number": "number",
        "string": "string",
        "boolean": "boolean",
        "null": "null",
    }.get(str(kind), "any")


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"
