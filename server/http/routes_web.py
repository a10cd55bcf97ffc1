"""The pages served on the API's own origin: ``/desk/``, ``/supervisor/``, ``/app/``.

The files live in ``server/web/`` (plain HTML, CSS and JavaScript modules, no build
step). Only files that exist there when the app is built are served, looked up in a
table rather than joined onto a path, so nothing outside that folder can be named.
Every page answer carries a strict Content-Security-Policy: scripts and styles come
from this origin only and nothing inline runs.

``/`` lists the pages in development mode and is not found otherwise.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.appkeys import SETTINGS
from server.errors import NotFound

from .respond import json_response

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
PAGES = ("desk", "supervisor", "app")
_FOLDERS = (*PAGES, "common")

_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
        "object-src 'none'",
    )
)

_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The desk and app need the camera and microphone on this origin, nothing else.
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=()",
    # Pages change with the server; always revalidate.
    "Cache-Control": "no-cache",
}

WEB_FILES: web.AppKey[dict[str, tuple[bytes, str]]] = web.AppKey("web_files")


def _load_files() -> dict[str, tuple[bytes, str]]:
    """URL path -> (content, content type) for every servable file under WEB_ROOT."""
    files: dict[str, tuple[bytes, str]] = {}
    for folder in _FOLDERS:
        base = WEB_ROOT / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            kind = _TYPES.get(path.suffix)
            if path.is_file() and kind is not None:
                url = "/" + path.relative_to(WEB_ROOT).as_posix()
                files[url] = (path.read_bytes(), kind)
        page = f"/{folder}/index.html"
        if page in files:
            files[f"/{folder}/"] = files[page]
    home = WEB_ROOT / "index.html"
    if home.is_file():
        files["/"] = (home.read_bytes(), "text/html")
    return files


def _page_response(content: bytes, content_type: str) -> web.Response:
    charset = "utf-8" if not content_type.startswith("image/png") else None
    response = web.Response(body=content, content_type=content_type, charset=charset)
    response.headers.update(_SECURITY_HEADERS)
    return response


async def serve_file(request: web.Request) -> web.StreamResponse:
    path = request.path
    if path == "/" and not request.app[SETTINGS].dev_mode:
        raise NotFound("not found", code="not_found")
    if path in (f"/{page}" for page in PAGES):
        raise web.HTTPPermanentRedirect(path + "/")
    found = request.app[WEB_FILES].get(path)
    if found is None:
        raise NotFound(f"no page {path[:80]!r}", code="not_found")
    return _page_response(*found)


async def web_config(request: web.Request) -> web.Response:
    """What the pages need to know about this server before anyone logs in."""
    response = json_response({"dev_mode": request.app[SETTINGS].dev_mode})
    response.headers.update(_SECURITY_HEADERS)
    return response


def install_web(app: web.Application) -> None:
    """Serve the pages; called once from ``create_app``."""
    app[WEB_FILES] = _load_files()
    app.router.add_get("/web/config.json", web_config)
    app.router.add_get("/", serve_file)
    for folder in _FOLDERS:
        app.router.add_get(f"/{folder}", serve_file)
        app.router.add_get(f"/{folder}/{{name:.*}}", serve_file)
