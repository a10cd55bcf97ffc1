"""Settings checks the ``cloudbranch`` command runs before it does anything.

A bad or missing setting ends the command with one line on stderr that names the
``CLOUDBRANCH_*`` variable, and exit status 2, instead of a pydantic or SQLAlchemy
traceback. Values are never echoed: a database URL carries a password, and the
secrets are secrets.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from server.settings import Settings, load_settings

ENV_PREFIX = "CLOUDBRANCH_"
SETTINGS_FILE_VARIABLE = "CLOUDBRANCH_SETTINGS_FILE"
EXIT_BAD_SETTINGS = 2


class SettingsProblem(Exception):
    """A setting the command cannot run with; ``str()`` is the one line to print."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_checked() -> Settings:
    """The settings, or :class:`SettingsProblem` naming what is wrong."""
    _check_settings_file()
    try:
        return load_settings()
    except ValidationError as exc:
        raise SettingsProblem(describe_validation_error(exc)) from None
    except SettingsError as exc:
        raise SettingsProblem(_describe_settings_error(exc)) from None


class _DevModeOnly(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")
    dev_mode: bool = False


def dev_mode_requested() -> bool:
    """Whether development mode is on, read on its own: commands that exist only in
    development mode say so before anything else is checked."""
    _check_settings_file()
    try:
        return _DevModeOnly(_env_file=os.environ.get(SETTINGS_FILE_VARIABLE)).dev_mode
    except ValidationError as exc:
        raise SettingsProblem(describe_validation_error(exc)) from None


def check_database_url(settings: Settings) -> None:
    """The URL must name an async driver SQLAlchemy has: the service only runs async."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    name = env_name("database_url")
    example = (
        "e.g. sqlite+aiosqlite:///var/cloudbranch.db or postgresql+asyncpg://USER:PASS@HOST/DB"
    )
    try:
        dialect = make_url(settings.database_url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise SettingsProblem(
            f"{name}: not a database URL this service can use ({example})"
        ) from None
    if not getattr(dialect, "is_async", False):
        raise SettingsProblem(f"{name}: needs an async driver ({example})")


def check_redis_url(settings: Settings) -> None:
    if settings.redis_url is None:
        return
    from redis.connection import parse_url

    try:
        parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise SettingsProblem(f"{env_name('redis_url')}: {exc}") from None


def check_rulesets(settings: Settings) -> None:
    """A ruleset file that is missing or invalid is refused before serving."""
    import risk

    for field in ("risk_ruleset_path", "risk_shadow_ruleset_path"):
        path = getattr(settings, field)
        if path is None:
            continue
        try:
            risk.load_ruleset(Path(path))
        except risk.RulesetError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid ruleset"
            raise SettingsProblem(f"{env_name(field)}: {first}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """All of a settings validation error on one line, each part naming its variable."""
    parts: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = error.get("loc") or ()
        if loc:
            parts.append(f"{env_name(str(loc[0]))}: {message}")
        else:
            # Model-level checks already name their variables in the message.
            parts.append(message)
    return "; ".join(parts) or "invalid settings"


_FIELD_IN_SETTINGS_ERROR = re.compile(r'field "([a-z0-9_]+)"')


def _describe_settings_error(exc: SettingsError) -> str:
    # pydantic-settings fails before validation when a complex value (a list)
    # is not JSON; its message names the field, not the variable.
    found = _FIELD_IN_SETTINGS_ERROR.search(str(exc))
    if found is None:
        return f"settings could not be read: {str(exc).splitlines()[0]}"
    return f'{env_name(found.group(1))}: not valid JSON (a list is written like ["a", "b"])'


def _check_settings_file() -> None:
    path = os.environ.get(SETTINGS_FILE_VARIABLE)
    if path and not Path(path).is_file():
        # pydantic-settings would silently ignore it and run with the defaults.
        raise SettingsProblem(f"{SETTINGS_FILE_VARIABLE}: no such file: {path}")
