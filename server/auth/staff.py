"""Revocable staff access: sessions, account switches, and the check every request makes.

A staff login opens a session row (server/db/staff.py) and gets a short-lived access
token naming it (``sid``) plus a refresh token. Each HTTP request and each socket
``hello`` asks :meth:`StaffAccess.check` whether the account is still active and the
session still live. The answer is cached per node for ``staff_check_cache_s`` (a few
seconds), so a disable or revoke made on any node takes effect everywhere within
that time; on the node that made it, at once.

Development tokens (``POST /api/v1/dev/tokens``) have no session. They are accepted
in development mode only, and then also for staff subjects that are not rows (the
tests' ``SUP1`` supervisor); a subject that is a row must still be active.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog
from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Specialist
from server.db.staff import StaffSession
from server.errors import Unauthorized
from server.settings import Settings
from server.tasks import cancel_and_wait, stop_if_cancel_requested

from .principal import Principal, Role
from .tokens import issue_token

log = structlog.get_logger(__name__)

STAFF_ROLES = frozenset({Role.SPECIALIST, Role.SUPERVISOR})


@dataclass(frozen=True)
class IssuedTokens:
    token: str
    refresh_token: str
    expires_in_s: int
    session_id: str


@dataclass(frozen=True)
class Verdict:
    """Why access was refused (``code``), or None when it was not."""

    code: str | None
    detail: str = ""


_OK = Verdict(None)


def _hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class StaffAccess:
    """Opens, renews and revokes staff sessions; answers "may this token still act?"."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self._monotonic = monotonic
        self._cache: dict[tuple[str, str, str | None], tuple[Verdict, float]] = {}

    # ------------------------------------------------------------------ sessions

    async def open_session(self, session: AsyncSession, staff_id: str, role: Role) -> IssuedTokens:
        """A new session in the caller's transaction (the caller commits)."""
        now = self.clock()
        refresh = secrets.token_urlsafe(32)
        row = StaffSession(
            session_id=uuid.uuid4().hex,
            staff_id=staff_id,
            role=role.value,
            refresh_hash=_hash(refresh),
            created_at=_utc(now),
            expires_at=_utc(now + self.settings.staff_session_ttl_s),
        )
        session.add(row)
        return self._tokens(row, refresh, now)

    async def refresh(self, refresh_token: str) -> tuple[IssuedTokens, str]:
        """A new access token (and a new refresh token: the old one stops working)."""
        now = self.clock()
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(StaffSession).where(StaffSession.refresh_hash == _hash(refresh_token))
                )
            ).scalar_one_or_none()
            if row is None:
                verdict = Verdict("session_revoked", "unknown or already used refresh token")
            else:
                holder = Principal(Role(row.role), row.staff_id, row.session_id)
                account = await session.get(Specialist, row.staff_id)
                verdict = self._judge(holder, account, row, now)
            if row is None or verdict.code is not None:
                raise Unauthorized(verdict.detail, code=verdict.code or "session_revoked")
            refresh = secrets.token_urlsafe(32)
            # Compare-and-set: of two refreshes racing with one token, one wins.
            rotated = await session.execute(
                update(StaffSession)
                .where(
                    StaffSession.session_id == row.session_id,
                    StaffSession.refresh_hash == _hash(refresh_token),
                )
                .values(refresh_hash=_hash(refresh))
                .execution_options(synchronize_session=False)
            )
            if int(getattr(rotated, "rowcount", 0) or 0) != 1:
                raise Unauthorized("refresh token already used", code="session_revoked")
            await session.commit()
            return self._tokens(row, refresh, now), row.staff_id

    def _tokens(self, row: StaffSession, refresh: str, now: float) -> IssuedTokens:
        token = issue_token(
            self.settings, Role(row.role), row.staff_id, now=now, session_id=row.session_id
        )
        return IssuedTokens(token, refresh, self.settings.token_ttl_s, row.session_id)

    async def revoke_session(self, session: AsyncSession, session_id: str, reason: str) -> int:
        result = await session.execute(
            update(StaffSession)
            .where(StaffSession.session_id == session_id, StaffSession.revoked_at.is_(None))
            .values(revoked_at=_utc(self.clock()), revoked_reason=reason)
        )
        self._cache.clear()
        return int(getattr(result, "rowcount", 0) or 0)

    async def revoke_all(self, session: AsyncSession, staff_id: str, reason: str) -> int:
        result = await session.execute(
            update(StaffSession)
            .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
            .values(revoked_at=_utc(self.clock()), revoked_reason=reason)
        )
        self._cache.clear()
        return int(getattr(result, "rowcount", 0) or 0)

    async def set_active(self, session: AsyncSession, staff_id: str, active: bool) -> bool:
        """Enable or disable an account; False if there is no such account."""
        account = await session.get(Specialist, staff_id)
        if account is None:
            return False
        account.active = active
        self._cache.clear()
        return True

    def forget(self) -> None:
        """Drop cached answers (after a change made on this node)."""
        self._cache.clear()

    # ------------------------------------------------------------------ the check

    async def check(self, principal: Principal) -> None:
        """Raise 401 unless ``principal`` may still act: staff account active, session live."""
        if principal.role not in STAFF_ROLES:
            return
        verdict = await self.verdict(principal)
        if verdict.code is not None:
            raise Unauthorized(verdict.detail, code=verdict.code)

    async def verdict(self, principal: Principal) -> Verdict:
        cached = self._cache.get(_cache_key(principal))
        if cached is not None and cached[1] > self._monotonic():
            return cached[0]
        return (await self.verdicts([principal]))[principal]

    async def verdicts(self, principals: list[Principal]) -> dict[Principal, Verdict]:
        """:meth:`verdict` for many principals at once (read afresh, then cached),
        with one query per table."""
        wanted = list(dict.fromkeys(principals))
        if not wanted:
            return {}
        now = self.clock()
        async with self.sessions() as session:
            accounts: dict[str, Specialist] = {}
            rows: dict[str, StaffSession] = {}
            # Sessions before accounts. The reads are separate statements, and
            # neither SQLite (pysqlite opens no transaction for a SELECT) nor
            # PostgreSQL (READ COMMITTED) gives them one snapshot: a disable that
            # commits between them (account inactive and sessions revoked, in one
            # transaction) is seen by the later read only. _judge lets the account
            # speak first, so the account is read last: such a desk is told
            # "account disabled", not "session ended; log in again".
            ids = sorted({p.session_id for p in wanted if p.session_id is not None})
            for chunk in _chunks(ids):
                found_rows = await session.execute(
                    select(StaffSession).where(StaffSession.session_id.in_(chunk))
                )
                rows.update((r.session_id, r) for r in found_rows.scalars())
            for chunk in _chunks(sorted({p.subject for p in wanted})):
                found = await session.execute(
                    select(Specialist).where(Specialist.specialist_id.in_(chunk))
                )
                accounts.update((a.specialist_id, a) for a in found.scalars())
        if len(self._cache) > 10_000:  # bounded: stale entries go all at once
            self._cache.clear()
        out: dict[Principal, Verdict] = {}
        until = self._monotonic() + self.settings.staff_check_cache_s
        for principal in wanted:
            verdict = self._judge(
                principal,
                accounts.get(principal.subject),
                rows.get(principal.session_id) if principal.session_id is not None else None,
                now,
            )
            self._cache[_cache_key(principal)] = (verdict, until)
            out[principal] = verdict
        return out

    def _judge(
        self,
        principal: Principal,
        account: Specialist | None,
        row: StaffSession | None,
        now: float,
    ) -> Verdict:
        """The rules, on what was read: account first (a disabled account says so,
        whatever its sessions), then the session."""
        if account is None and not self.settings.dev_mode:
            return Verdict("account_disabled", "no such staff account")
        if account is not None and not account.active:
            return Verdict("account_disabled", "this account is disabled")
        # Once staff rows carry their role, a token may only speak for that role.
        row_role = getattr(account, "role", None)
        if row_role is not None and str(row_role) != principal.role.value:
            return Verdict("session_revoked", "the account's role has changed")
        if principal.session_id is None:
            if not self.settings.dev_mode:
                return Verdict("invalid_token", "staff tokens must belong to a session")
            return _OK
        if row is None:
            return Verdict("session_revoked", "this session does not exist")
        if row.staff_id != principal.subject or row.role != principal.role.value:
            return Verdict("session_revoked", "the token does not match its session")
        if row.revoked_at is not None:
            return Verdict("session_revoked", "this session was ended; log in again")
        if row.expires_at <= _utc(now):
            return Verdict("session_expired", "this session has expired; log in again")
        return _OK


def _cache_key(principal: Principal) -> tuple[str, str, str | None]:
    return (principal.role.value, principal.subject, principal.session_id)


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


class WatchedSocket(Protocol):
    @property
    def principal(self) -> Principal: ...

    def refuse(self, code: str, detail: str) -> None: ...


class StaffSocketWatch:
    """Closes open staff sockets whose account was disabled or session revoked.

    Every ``interval_s`` the watch asks :meth:`StaffAccess.verdict` (cached, so at
    most one lookup per session per cache period) for each staff socket on this
    node and refuses those that may no longer act. Owned by the application:
    :meth:`start`, and :meth:`stop` (cancel, then await).
    """

    def __init__(
        self,
        access: StaffAccess,
        sockets: Callable[[], list[WatchedSocket]],
        interval_s: float,
    ) -> None:
        self._access = access
        self._sockets = sockets
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="staff-socket-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def sweep(self) -> int:
        """One pass (two queries, however many sockets); how many were refused."""
        staff = [s for s in self._sockets() if s.principal.role in STAFF_ROLES]
        verdicts = await self._access.verdicts([s.principal for s in staff])
        refused = 0
        for socket in staff:
            verdict = verdicts[socket.principal]
            if verdict.code is not None:
                socket.refuse(verdict.code, verdict.detail)
                refused += 1
        return refused

    async def _run(self) -> None:
        while True:
            stop_if_cancel_requested("staff socket watch")
            await asyncio.sleep(self._interval_s)
            try:
                await self.sweep()
            except Exception:
                # A database hiccup must not end the watch; the next pass retries.
                log.warning("staff.watch_failed", exc_info=True)


STAFF_ACCESS: web.AppKey[StaffAccess] = web.AppKey("staff_access", StaffAccess)
