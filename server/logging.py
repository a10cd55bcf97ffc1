"""structlog configuration and the processor that keeps personal data out of logs.

Masking works on two levels: values under keys that are personal by name (``name``,
``phone``, ``payee_account``...) are masked whatever they contain, and every string
value is scanned for things that look like phone numbers, national ID numbers and
account/card numbers. Both keep only the last four characters, which is what a
person reading logs needs to tell records apart.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_PERSONAL_KEYS = re.compile(
    r"(^|_)(name|phone|mobile|account|account_no|id_number|id_no|payee_account|card|card_no)$"
)
_ID_NUMBER = re.compile(r"(?<!\d)\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?!\d)")
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)")
_ACCOUNT = re.compile(r"(?<!\d)\d{10,19}(?!\d)")
_SAFE_KEYS = frozenset({"event", "timestamp", "level", "logger", "call_id", "offer_id"})
# Credentials: JWTs (a base64url JSON header always starts "eyJ"), bearer values,
# token query parameters, and values under keys that name a secret.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*)?")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}")
_TOKEN_PARAM = re.compile(r"(?i)((?:access_|refresh_)?token=)[^&\s\"']+")
_SECRET_KEYS = re.compile(r"(token|password|secret|authorization|cookie|signature)$")
REDACTED = "[redacted]"

# Loggers of the libraries under the service; each is sent through the same
# processors as the service's own events (server.logging.configure_logging).
LIBRARY_LOGGERS = (
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "aiohttp.client",
    "asyncio",
    "sqlalchemy",
    "alembic",
    "aioice",
    "aiortc",
)
_HANDLER_NAME = "cloudbranch-structlog"


def mask_value(text: str) -> str:
    """Mask a whole value: keep the last four characters."""
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def mask_text(text: str) -> str:
    """Mask tokens, ID, phone and account numbers wherever they appear in free text."""
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _TOKEN_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    text = _ID_NUMBER.sub(lambda m: mask_value(m.group()), text)
    text = _PHONE.sub(lambda m: mask_value(m.group()), text)
    return _ACCOUNT.sub(lambda m: mask_value(m.group()), text)


def _mask(key: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # Personal numbers do not always arrive as text: a JSON body may carry an
        # account or phone number as a number. Mask those like their text form;
        # other numbers (counts, ages, amounts) keep their type.
        text = str(value)
        masked = _mask(key, text)
        return value if masked == text else masked
    if isinstance(value, str):
        if _SECRET_KEYS.search(key.lower()):
            return REDACTED
        if _PERSONAL_KEYS.search(key.lower()):
            return mask_value(value)
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: _mask(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(key, v) for v in value]
    return value


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask personal data in every event."""
    for key, value in list(event_dict.items()):
        if key in _SAFE_KEYS and key != "event":
            continue
        event_dict[key] = _mask(key, value)
    return event_dict


def configure_logging(fmt: str = "console", level: str = "INFO") -> None:
    """Configure structlog once for the process (idempotent), and route the standard
    library's loggers (aiohttp, asyncio, SQLAlchemy, aioice...) through the same
    processors, so masking applies to every line written, tracebacks included."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # Never the "pretty" formatters: they print local variables, tokens among them.
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    _route_library_logging(renderer, level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (it may be replaced
    after set-up, as test runners do), never to a stream that has since closed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _route_library_logging(renderer: Any, level: str) -> None:
    """One stderr handler on the root logger, formatting with structlog's processors.

    ``format_exc_info`` turns a record's traceback into text *before* the masking
    processor runs, so what a library logs with ``exc_info`` is masked like the rest.
    """
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries' DEBUG output (aiosqlite's, for one) carries query parameters: the
    # service's own events may go down to DEBUG, the libraries' stop at INFO.
    wanted = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    root.setLevel(max(wanted, logging.INFO))
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        # A library's own handler would write around the masking: through ours only.
        for own in list(library.handlers):
            library.removeHandler(own)
        library.propagate = True
