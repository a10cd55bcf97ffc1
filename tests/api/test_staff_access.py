"""Revocable staff access, login throttling and token binding, against a real server.

Runs on SQLite and PostgreSQL: sessions and account switches are rows, and the
checks read them on every request and socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest

from server import audit
from server.appkeys import CALLS
from server.auth.admin import AccessAction, change_access
from server.auth.staff import StaffAccess
from server.db.banking import AuditEntry
from tests.api.harness import Api, RunningServer, running_server
from tests.api.helpers import BOTH_DATABASES, assert_problem, close_frame_code, seeded_database
from tests.api.test_operations import SCAM_TRANSFER, active_call

CLOSE_UNAUTHORIZED = 4401
IDP_SECRET = "bank-idp-shared-secret-for-tests-0123456789"


@pytest.fixture(params=BOTH_DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with seeded_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def server_settings() -> dict[str, Any]:
    # A lock short enough that its expiry can be observed (15 s: five failed logins
    # must fit in the window on a loaded machine); a 0.2 s cache keeps the
    # cross-check fast; the tiers are the real mechanism, only shorter.
    return {
        "login_account_limits": "5 per 15 seconds;8 per 60 seconds",
        "staff_check_cache_s": 0.2,
        "customer_jwt_secret": IDP_SECRET,
    }


async def _audit_kinds(server: RunningServer) -> list[AuditEntry]:
    from sqlalchemy import select

    async with server.app[CALLS].sessions() as session:
        rows = (await session.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars()
        return list(rows)


async def _login(api: Api, username: str, password: str) -> Any:
    return await api.request(
        "POST", "/api/v1/desk/login", {"username": username, "password": password}
    )


# --------------------------------------------------------------------------- 1. staff identity


async def test_a_disabled_specialist_loses_socket_http_and_ws_at_once(
    api: Api, server: RunningServer
) -> None:
    desk, desk_ws, _customer, customer_ws, call_id = await active_call(api, "chen.li")
    supervisor = await api.supervisor()

    disabled = await supervisor.post(f"/api/v1/specialists/{desk.subject}/disable")
    assert disabled.status == 200, disabled
    assert disabled.body == {"specialist_id": "S01", "active": False, "sessions_revoked": 1}

    # The open desk socket is told why and closed with 4401.
    refusal = await desk_ws.expect("error", code="account_disabled")
    assert refusal["detail"]
    assert await close_frame_code(desk_ws) == CLOSE_UNAUTHORIZED
    # The old token opens nothing: no operation, no read of the call, no socket.
    start = await desk.post(
        f"/api/v1/calls/{call_id}/operations", {"kind": "transfer", "params": SCAM_TRANSFER}
    )
    assert_problem(start, 401, "account_disabled")
    assert_problem(await desk.get(f"/api/v1/calls/{call_id}"), 401, "account_disabled")
    socket = await api.socket()
    answer = await socket.hello(desk.token)
    assert answer["type"] == "error" and answer["code"] == "unauthorized", answer
    assert await close_frame_code(socket) == CLOSE_UNAUTHORIZED
    assert_problem(await _login(api, "chen.li", "branch-demo"), 401, "invalid_credentials")
    # The customer's side of the call is still served.
    await customer_ws.send({"type": "ping"})
    await customer_ws.expect("pong")

    enabled = await supervisor.post(f"/api/v1/specialists/{desk.subject}/enable")
    assert enabled.status == 200 and enabled.body["active"] is True
    # Enabling does not bring old sessions back: a fresh login does.
    assert_problem(await desk.get(f"/api/v1/calls/{call_id}"), 401, "session_revoked")
    assert (await _login(api, "chen.li", "branch-demo")).status == 200

    kinds = [e.kind for e in await _audit_kinds(server)]
    assert "staff.disabled" in kinds and "staff.enabled" in kinds


async def change_elsewhere(server: RunningServer, staff_id: str, action: AccessAction) -> None:
    """``action`` committed as another node or the CLI would: its own StaffAccess
    (so this server's cache is not told), straight to the database."""
    other_node = StaffAccess(server.settings, server.app[CALLS].sessions)
    async with server.app[CALLS].sessions() as session:
        await change_access(
            other_node,
            session,
            staff_id,
            action,
            actor_role="operator",
            actor_id=None,
            now=time.time(),
        )
        await session.commit()


async def test_a_change_made_elsewhere_closes_the_socket_within_the_cache_period(
    api: Api, server: RunningServer
) -> None:
    """Revocation written straight to the database (another node, the CLI) is seen
    by this node's watch within ``staff_check_cache_s``."""
    desk = await api.specialist("wang.fang")
    desk_ws = await desk.connect()
    await change_elsewhere(server, desk.subject, AccessAction.REVOKE)
    await desk_ws.expect("error", code="session_revoked", timeout=10)
    assert await close_frame_code(desk_ws, within=10) == CLOSE_UNAUTHORIZED
    assert_problem(await desk.get("/api/v1/calls/c0ffee"), 401, "session_revoked")


class _DisableBetweenReads:
    """A sessionmaker whose sessions let a disable of ``staff_id`` commit (through
    another connection) right after their first read: what another node or the
    CLI may do at any moment between the check's two statements."""

    def __init__(self, server: RunningServer, staff_id: str) -> None:
        self._server = server
        self._sessions = server.app[CALLS].sessions
        self._staff_id = staff_id
        self.reads = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Any]:
        async with self._sessions() as session:
            yield _Interleaved(session, self)

    async def after_read(self) -> None:
        self.reads += 1
        if self.reads != 1:
            return
        await change_elsewhere(self._server, self._staff_id, AccessAction.DISABLE)


class _Interleaved:
    def __init__(self, session: Any, owner: _DisableBetweenReads) -> None:
        self._session = session
        self._owner = owner

    async def execute(self, *args: Any, **kw: Any) -> Any:
        result = await self._session.execute(*args, **kw)
        await self._owner.after_read()
        return result

    async def get(self, *args: Any, **kw: Any) -> Any:
        found = await self._session.get(*args, **kw)
        await self._owner.after_read()
        return found


@pytest.mark.parametrize("batched", [True, False], ids=["sweep", "single"])
async def test_a_disable_committed_between_the_checks_reads_says_disabled(
    api: Api, server: RunningServer, batched: bool
) -> None:
    """The account is read after the session, so a disable that lands between the
    two reads is reported as what it is (not as an ended session, whose remedy,
    logging in again, would only be refused)."""
    from server.auth.tokens import verify_token

    desk = await api.specialist("zhou.min")
    principal = verify_token(server.settings, desk.token)
    sessions = _DisableBetweenReads(server, desk.subject)
    access = StaffAccess(server.settings, sessions)
    if batched:
        verdict = (await access.verdicts([principal]))[principal]
    else:
        verdict = await access.verdict(principal)
    assert sessions.reads == 2  # the disable did land between the two reads
    assert verdict.code == "account_disabled", verdict


async def test_welcome_comes_only_after_the_check(api: Api) -> None:
    desk = await api.specialist("zhou.min")
    logout = await desk.post("/api/v1/desk/logout")
    assert logout.status == 204, logout
    socket = await api.socket()
    first = await socket.hello(desk.token)
    assert first == {
        "type": "error",
        "code": "unauthorized",
        "detail": "this session was ended; log in again",
    }
    assert await close_frame_code(socket) == CLOSE_UNAUTHORIZED


async def test_tokens_are_short_lived_and_refresh_rotates(api: Api) -> None:
    reply = await _login(api, "huang.wei", "branch-demo")
    assert reply.status == 200, reply
    claims = jwt.decode(reply.body["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 15 * 60 and claims["sid"]
    assert reply.body["expires_in_s"] == 15 * 60

    refreshed = await api.request(
        "POST", "/api/v1/desk/refresh", {"refresh_token": reply.body["refresh_token"]}
    )
    assert refreshed.status == 200, refreshed
    assert refreshed.body["refresh_token"] != reply.body["refresh_token"]
    new_claims = jwt.decode(refreshed.body["token"], options={"verify_signature": False})
    assert new_claims["sid"] == claims["sid"]
    # The old refresh token was used up.
    again = await api.request(
        "POST", "/api/v1/desk/refresh", {"refresh_token": reply.body["refresh_token"]}
    )
    assert_problem(again, 401, "session_revoked")
    # Logout ends the session: neither the access nor the refresh token works after.
    bearer = {"Authorization": f"Bearer {refreshed.body['token']}"}
    assert (await api.request("POST", "/api/v1/desk/logout", headers=bearer)).status == 204
    presence = await api.request(
        "PUT", "/api/v1/desk/presence", {"state": "available"}, headers=bearer
    )
    assert_problem(presence, 401, "session_revoked")
    after = await api.request(
        "POST", "/api/v1/desk/refresh", {"refresh_token": refreshed.body["refresh_token"]}
    )
    assert_problem(after, 401, "session_revoked")


async def test_only_a_supervisor_changes_staff_access(api: Api) -> None:
    desk = await api.specialist("li.na")
    for path in ("disable", "enable", "revoke-sessions"):
        assert_problem(await desk.post(f"/api/v1/specialists/S02/{path}"), 403, "wrong_role")
    supervisor = await api.supervisor()
    missing = await supervisor.post("/api/v1/specialists/S99/disable")
    assert_problem(missing, 404, "specialist_not_found")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_outside_development_a_sessionless_staff_token_is_refused(
    database_url: str,
) -> None:
    secret = "a-production-secret-that-is-long-enough-0123456789"
    async with running_server(
        database_url=database_url, dev_mode=False, jwt_secret=secret, media_mode="direct"
    ) as srv:
        import aiohttp

        now = int(time.time())
        forged = jwt.encode(
            {"iss": "cloudbranch", "sub": "S01", "role": "specialist", "iat": now, "exp": now + 60},
            secret,
        )
        async with aiohttp.ClientSession() as session:
            api = Api(srv.base_url, session)
            reply = await api.request(
                "PUT",
                "/api/v1/desk/presence",
                {"state": "available"},
                headers={"Authorization": f"Bearer {forged}"},
            )
            assert_problem(reply, 401, "invalid_token")


# --------------------------------------------------------------------------- 2. login throttle


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # counts are not in SQL
async def test_the_sixth_wrong_password_is_429_and_locks_out_the_right_one(
    api: Api, server: RunningServer
) -> None:
    before = len(await _audit_kinds(server))
    for _ in range(5):
        assert_problem(await _login(api, "gu.qiang", "wrong-password"), 401, "invalid_credentials")
    sixth = await _login(api, "gu.qiang", "wrong-password")
    body = assert_problem(sixth, 429, "too_many_attempts")
    retry_after = int(sixth.headers["Retry-After"])
    assert 1 <= retry_after <= 15 and body["retry_after_s"] == retry_after
    # Locked: even the right password is refused, without hashing or auditing it.
    assert_problem(await _login(api, "gu.qiang", "branch-demo"), 429, "too_many_attempts")
    # Another account from the same address is not locked by this one.
    assert (await _login(api, "he.jia", "branch-demo")).status == 200
    entries = (await _audit_kinds(server))[before:]
    assert [e.kind for e in entries].count("auth.login_failed") == 5
    # The lock expires: the right password works again after Retry-After.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 40
    while (reply := await _login(api, "gu.qiang", "branch-demo")).status == 429:
        assert loop.time() < deadline, reply
        await asyncio.sleep(float(reply.headers["Retry-After"]))
    assert reply.status == 200, reply


async def test_a_concurrent_burst_of_wrong_passwords_is_counted(api: Api) -> None:
    """Twenty at once: attempts are checked one slot at a time, so the lock holds
    (at most one extra attempt per extra hashing slot gets through)."""
    replies = await asyncio.gather(*(_login(api, "zhang.jun", f"wrong-{i}") for i in range(20)))
    statuses = sorted(r.status for r in replies)
    assert 5 <= statuses.count(401) <= 6, statuses
    assert statuses.count(429) == 20 - statuses.count(401), statuses


async def test_failed_login_audit_entries_are_aggregated_in_bursts(
    database_url: str,
) -> None:
    settings = {
        "login_account_limits": "1000/minute",
        "login_address_limits": "1000/minute",
        "login_audit_per_minute": 3,
    }
    async with running_server(database_url=database_url, **settings) as srv:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            api = Api(srv.base_url, session)
            for i in range(7):
                await _login(api, f"nobody{i}", "x")
        async with srv.app[CALLS].sessions() as session:
            failed = [e for e in await _audit_kinds(srv) if e.kind == "auth.login_failed"]
            assert len(failed) == 3  # the other four are counted, not written
            ok = await audit.verify(session)
            assert ok.ok


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(
    database_url: str,
) -> None:
    import aiohttp

    settings = {"login_address_limits": "3 per 30 seconds", "trusted_proxies": ["127.0.0.1"]}
    async with (
        running_server(database_url=database_url, **settings) as srv,
        aiohttp.ClientSession() as session,
    ):
        api = Api(srv.base_url, session)

        async def attempt(client: str, n: int) -> Any:
            return await api.request(
                "POST",
                "/api/v1/desk/login",
                {"username": f"someone{n}", "password": "x"},
                headers={"X-Forwarded-For": f"198.51.100.7, {client}"},
            )

        for n in range(3):
            assert_problem(await attempt("203.0.113.1", n), 401, "invalid_credentials")
        assert_problem(await attempt("203.0.113.1", 9), 429, "too_many_attempts")
        # Another client behind the same proxy is not locked out by the first.
        assert_problem(await attempt("203.0.113.2", 10), 401, "invalid_credentials")


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_lock_is_shared_by_nodes_through_redis(database_url: str, redis_url: str) -> None:
    import aiohttp

    limits = {"login_account_limits": "3 per 30 seconds", "redis_url": redis_url}
    async with (
        running_server(database_url=database_url, **limits) as one,
        running_server(database_url=database_url, **limits) as two,
        aiohttp.ClientSession() as session,
    ):
        username = f"xu.hong-{time.time_ns()}"  # a fresh key on the shared Redis
        for base in (one.base_url, two.base_url, one.base_url):
            reply = await Api(base, session).request(
                "POST", "/api/v1/desk/login", {"username": username, "password": "x"}
            )
            assert_problem(reply, 401, "invalid_credentials")
        locked = await Api(two.base_url, session).request(
            "POST", "/api/v1/desk/login", {"username": username, "password": "x"}
        )
        assert_problem(locked, 429, "too_many_attempts")


# --------------------------------------------------------------------------- 3. tokens, secrets


async def test_a_customer_token_without_the_audience_is_refused(api: Api) -> None:
    now = int(time.time())
    base = {"iss": "bank-idp", "sub": "C1004", "iat": now, "exp": now + 300}
    for what, claims in [
        ("no audience", base),
        ("another app's audience", {**base, "aud": "bank-wealth-app"}),
    ]:
        token = jwt.encode(claims, IDP_SECRET, "HS256")
        reply = await api.request(
            "POST", "/api/v1/calls", {}, headers={"Authorization": f"Bearer {token}"}
        )
        assert_problem(reply, 401, "invalid_token", what)
        socket = await api.socket()
        assert (await socket.hello(token))["code"] == "unauthorized"
    good = jwt.encode({**base, "aud": "cloudbranch"}, IDP_SECRET, "HS256")
    reply = await api.request(
        "POST", "/api/v1/calls", {}, headers={"Authorization": f"Bearer {good}"}
    )
    assert reply.status == 201, reply
