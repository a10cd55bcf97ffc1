"""``docs/settings.md``: every ``CLOUDBRANCH_*`` setting, generated from ``Settings``.

What a setting means comes from, in order: its pydantic ``description``, the row
naming it in one of the README's settings tables, or the comment right above it in
``server/settings.py``. A setting with none of those is refused here, so a new
setting cannot ship undocumented.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from server import settings as settings_module
from server.preflight import SETTINGS_FILE_VARIABLE, env_name
from server.settings import Settings

HEADER = """# Settings reference

Generated from `server/settings.py` by `python -m server.docs`; do not edit by hand.
Every setting is an environment variable (or a line of the env-style file named by
`CLOUDBRANCH_SETTINGS_FILE`). A bad value stops every `cloudbranch` command with one
line naming the variable. Durations are seconds.

| variable | type | default | allowed | meaning |
| --- | --- | --- | --- | --- |
"""

_README_ROW = re.compile(r"^\|\s*(?P<names>`CLOUDBRANCH_[^|]+)\|(?P<cells>.*)\|\s*$")
_README_NAME = re.compile(r"`(CLOUDBRANCH_[A-Z0-9_]+)`")


class UndocumentedSetting(Exception):
    pass


def render(readme: str) -> str:
    meanings = readme_meanings(readme)
    comments = _source_comments()
    rows = [
        _row(
            SETTINGS_FILE_VARIABLE,
            "path",
            "unset",
            "",
            "an env-style file read after the environment (a missing file is refused)",
        )
    ]
    undocumented: list[str] = []
    for name, field in Settings.model_fields.items():
        variable = env_name(name)
        meaning = field.description or meanings.get(variable) or comments.get(name)
        if not meaning:
            undocumented.append(variable)
            continue
        rows.append(
            _row(variable, _type(field.annotation), _default(field), _allowed(field), meaning)
        )
    if undocumented:
        raise UndocumentedSetting(
            f"no description, README row or comment in server/settings.py for {undocumented}"
        )
    return HEADER + "\n".join(rows) + "\n"


def readme_meanings(readme: str) -> dict[str, str]:
    """``CLOUDBRANCH_X`` -> the meaning column of the README row that names it."""
    found: dict[str, str] = {}
    for line in readme.splitlines():
        match = _README_ROW.match(line)
        if match is None:
            continue
        cells = [c.strip() for c in match["cells"].split("|")]
        if not cells or not cells[-1]:
            continue
        for variable in _README_NAME.findall(match["names"]):
            found.setdefault(variable, cells[-1])
    return found


def _row(variable: str, kind: str, default: str, allowed: str, meaning: str) -> str:
    cells = [f"`{variable}`", kind, default, allowed, meaning.replace("\n", " ")]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        rendered = " or ".join(_type(a) for a in inner)
        return rendered + (" or unset" if len(inner) < len(args) else "")
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"JSON list of {_type(args[0])}" if args else "JSON list"
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    return {
        bool: "boolean (`0`/`1`)",
        int: "integer",
        float: "number",
        str: "text",
        SecretStr: "secret",
        Path: "path",
    }.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, list | dict) and not value:
            return "empty"
        return "generated at start-up"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{int(value)}`"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


_BOUNDS = (
    (annotated_types.Ge, "≥", "ge"),
    (annotated_types.Gt, ">", "gt"),
    (annotated_types.Le, "≤", "le"),
    (annotated_types.Lt, "<", "lt"),
    (annotated_types.MinLen, "length ≥", "min_length"),
    (annotated_types.MaxLen, "length ≤", "max_length"),
)


def _allowed(field: FieldInfo) -> str:
    parts: list[str] = []
    for item in field.metadata:
        for kind, sign, attribute in _BOUNDS:
            if isinstance(item, kind):
                bound = getattr(item, attribute)
                if isinstance(bound, float) and bound.is_integer():
                    bound = int(bound)
                parts.append(f"{sign} {bound}")
    return ", ".join(parts)


_FIELD_LINE = re.compile(r"^    (?P<name>[a-z_][a-z0-9_]*)\s*:")


def _source_comments() -> dict[str, str]:
    """field -> the comment block right above its line in server/settings.py."""
    lines = inspect.getsource(settings_module).splitlines()
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = _FIELD_LINE.match(line)
        if match is None:
            continue
        comment: list[str] = []
        above = index - 1
        while above >= 0 and lines[above].strip().startswith("#"):
            text = lines[above].strip().lstrip("#").strip()
            if text.startswith("--"):  # a section heading, not about this field
                break
            comment.insert(0, text)
            above -= 1
        if comment:
            found[match["name"]] = " ".join(comment)
    return found
