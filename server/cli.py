"""The ``cloudbranch`` command: serve, migrate, seed, token, risk, simulate, recording,
redirect-sign, staff, media-node."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

from server.preflight import (
    EXIT_BAD_SETTINGS,
    SettingsProblem,
    check_database_url,
    check_redis_url,
    check_rulesets,
    dev_mode_requested,
    load_checked,
)
from server.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["risk"]:
        from risk.cli import main as risk_main

        code: int = risk_main(args_list[1:])
        return code
    if args_list[:1] == ["simulate"]:
        return _simulate(args_list[1:])
    if args_list[:1] == ["recording"]:  # recording export (offline, with the private key)
        from server.recordings.export import main as recording_main

        return recording_main(args_list[1:])
    parser = argparse.ArgumentParser(prog="cloudbranch", description="Cloud Branch service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP and WebSocket server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("seed", help="insert demo customers and specialists (idempotent)")
    token = sub.add_parser("token", help="print a token (development mode only)")
    token.add_argument("role", choices=["customer", "specialist", "supervisor"])
    token.add_argument("subject")
    sub.add_parser("risk", help="risk engine tools: cloudbranch risk backtest --help")
    sub.add_parser("simulate", help="capacity simulation of a day: cloudbranch simulate --help")
    sub.add_parser("recording", help="recording export: cloudbranch recording export --help")
    sub.add_parser("media-node", help="run a media node process (relay mode, needs Redis)")
    _add_redirect_sign(sub)
    _add_staff(sub)
    args = parser.parse_args(args_list)
    if args.command == "redirect-sign":
        # Before load_settings: signing needs only the secret, not a server's settings.
        return _redirect_sign(args)

    try:
        return _run_command(args)
    except SettingsProblem as exc:
        # One line naming the setting, not a traceback (server/preflight.py).
        print(f"cloudbranch {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS


def _run_command(args: argparse.Namespace) -> int:
    if args.command == "token":
        if not dev_mode_requested():
            raise SettingsProblem(
                "tokens are issued here only in development mode: set CLOUDBRANCH_DEV_MODE=1"
            )
        return _token(load_checked(), args.role, args.subject)
    settings = load_checked()
    check_database_url(settings)
    if args.command == "staff":
        return _with_database(
            settings, lambda: asyncio.run(_staff(settings, args.action, args.account))
        )
    if args.command == "serve":
        check_redis_url(settings)
        check_rulesets(settings)
        return _serve(settings, args.host, args.port)
    if args.command == "migrate":
        return _with_database(settings, lambda: _migrate(settings))
    if args.command == "seed":
        return _with_database(settings, lambda: asyncio.run(_seed(settings)))
    if args.command == "media-node":
        from server.media.node_process import run as run_media_node

        return run_media_node(settings)
    raise AssertionError(f"unhandled command {args.command}")


def _with_database(settings: Settings, command: Callable[[], int]) -> int:
    """Run ``command``; a database it cannot reach or open is a settings problem."""
    from sqlalchemy.exc import DBAPIError

    try:
        return command()
    except (DBAPIError, OSError) as exc:
        raise SettingsProblem(_database_problem(exc)) from None


def _database_problem(exc: BaseException) -> str:
    line = _first_line(exc)
    missing_table = "no such table" in line or ("relation" in line and "does not exist" in line)
    hint = " (run cloudbranch migrate first)" if missing_table else ""
    return f"CLOUDBRANCH_DATABASE_URL: cannot use the database: {line}{hint}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import errno

    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import DBAPIError

    from server.app import create_app
    from server.drain import serve

    app = create_app(settings)
    host, port = host or settings.host, port or settings.port
    try:
        # SIGTERM drains the node within a bound (server/drain.py).
        return asyncio.run(serve(app, host, port, settings.drain_timeout_s))
    except TimeoutError:  # before OSError, its base class
        reached = "CLOUDBRANCH_DATABASE_URL" + (
            " or CLOUDBRANCH_REDIS_URL" if settings.redis_url else ""
        )
        raise SettingsProblem(f"cannot start: timed out reaching {reached}") from None
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise SettingsProblem(
                f"CLOUDBRANCH_HOST / CLOUDBRANCH_PORT (--host, --port): "
                f"cannot listen on {host}:{port}: {exc.strerror}"
            ) from None
        raise SettingsProblem(f"cannot start: {_first_line(exc)}") from None
    except RedisConnectionError as exc:
        raise SettingsProblem(
            f"CLOUDBRANCH_REDIS_URL: cannot reach Redis: {_first_line(exc)}"
        ) from None
    except DBAPIError as exc:
        raise SettingsProblem(_database_problem(exc)) from None


def _prepare_sqlite(settings: Settings) -> None:
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _migrate(settings: Settings) -> int:
    from server.db.migrate import upgrade

    _prepare_sqlite(settings)
    upgrade(settings.database_url)
    print("migrated", file=sys.stderr)
    return 0


async def _seed(settings: Settings) -> int:
    from server.db.engine import make_engine, make_sessionmaker
    from server.seed import seed

    engine = make_engine(settings.database_url)
    try:
        added = await seed(make_sessionmaker(engine))
    finally:
        await engine.dispose()
    print(f"seeded: {added}", file=sys.stderr)
    return 0


def _token(settings: Settings, role: str, subject: str) -> int:
    from server.auth.principal import Role
    from server.auth.tokens import issue_token

    print(issue_token(settings, Role(role), subject))
    return 0


def _simulate(argv: Sequence[str]) -> int:
    """Before load_settings: a simulation needs a profile, not a server's settings."""
    from server.simulate.cli import main as simulate_main

    return simulate_main(argv)


def _add_staff(sub: Any) -> None:
    staff = sub.add_parser(
        "staff",
        help="disable or enable a staff account, or revoke its sessions (audited)",
        description="Takes effect at once for new requests on every node after at most "
        "CLOUDBRANCH_STAFF_CHECK_CACHE_S seconds; open sockets are closed then too.",
    )
    staff.add_argument("action", choices=["disable", "enable", "revoke"])
    staff.add_argument("account", help="specialist id (S01) or username (chen.li)")


async def _staff(settings: Settings, action: str, account: str) -> int:
    import time

    from server.auth.admin import AccessAction, change_access
    from server.auth.staff import StaffAccess
    from server.calls import repository as repo
    from server.db.engine import make_engine, make_sessionmaker
    from server.errors import NotFound

    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        access = StaffAccess(settings, sessions)
        async with sessions() as session:
            row = await repo.get_specialist(session, account)
            if row is None:
                row = await repo.specialist_by_username(session, account)
            staff_id = row.specialist_id if row is not None else account
            try:
                result = await change_access(
                    access,
                    session,
                    staff_id,
                    AccessAction(action),
                    actor_role="operator",
                    actor_id=None,
                    now=time.time(),
                )
            except NotFound as exc:
                print(f"cloudbranch: {exc.detail}", file=sys.stderr)
                return 1
            await session.commit()
    finally:
        await engine.dispose()
    print(
        f"{result['specialist_id']}: active={result['active']} "
        f"sessions_revoked={result['sessions_revoked']}"
    )
    return 0


REDIRECT_URL = "http://127.0.0.1:8080/api/v1/redirects"


def _add_redirect_sign(sub: Any) -> None:
    sign = sub.add_parser(
        "redirect-sign",
        help="sign a scenario redirect body; print its headers and a curl command",
        description="Sign a redirect body as the mobile banking backend does. The secret "
        "comes from --secret or CLOUDBRANCH_REDIRECT_SECRET (prefer the variable: "
        "command lines end up in shell history).",
    )
    sign.add_argument("--secret", default=None, help="default: $CLOUDBRANCH_REDIRECT_SECRET")
    sign.add_argument("--body", default="-", help="file with the JSON body, or - for stdin")
    sign.add_argument("--timestamp", type=int, default=None, help="unix seconds; default: now")
    sign.add_argument("--url", default=REDIRECT_URL)


def _redirect_sign(args: argparse.Namespace) -> int:
    import os
    import shlex
    import time
    from pathlib import Path

    from server.redirects.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    secret = args.secret or os.environ.get("CLOUDBRANCH_REDIRECT_SECRET", "")
    if not secret:
        print("give --secret or set CLOUDBRANCH_REDIRECT_SECRET", file=sys.stderr)
        return 2
    try:
        body = sys.stdin.buffer.read() if args.body == "-" else Path(args.body).read_bytes()
    except OSError as exc:
        print(f"cannot read the body: {exc}", file=sys.stderr)
        return 2
    timestamp = int(time.time()) if args.timestamp is None else args.timestamp
    if timestamp < 0:
        print("--timestamp must be unix seconds", file=sys.stderr)
        return 2
    signature = sign(secret, timestamp, body)
    # A file is sent byte for byte by curl's @file; stdin has to be inlined.
    data = "@" + args.body if args.body != "-" else body.decode("utf-8", "replace")
    print(f"{TIMESTAMP_HEADER}: {timestamp}")
    print(f"{SIGNATURE_HEADER}: {signature}")
    print()
    print(
        shlex.join(
            [
                "curl",
                "-sS",
                "-X",
                "POST",
                args.url,
                "-H",
                "Content-Type: application/json",
                "-H",
                f"{TIMESTAMP_HEADER}: {timestamp}",
                "-H",
                f"{SIGNATURE_HEADER}: {signature}",
                "--data-binary",
                data,
            ]
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
