"""Bounds on the edges, with a real server: secrets, logs, socket budgets, slow
clients, security headers, /metrics and money input."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web

from server.app import create_app
from server.logging import configure_logging
from server.settings import Settings
from tests.api.harness import TEST_SETTINGS, Api
from tests.api.helpers import assert_problem, close_frame_code, seeded_database
from tests.api.test_operations import SCAM_TRANSFER, active_call

CLOSE_RATE_LIMITED = 4429
ACCOUNT = "6222020200112233445"
PHONE = "13912345678"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with seeded_database(request, "sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def server_settings() -> dict[str, Any]:
    return {"http_header_timeout_s": 1.0, "http_body_timeout_s": 1.0}


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "setting", ["CLOUDBRANCH_JWT_SECRET", "CLOUDBRANCH_REDIRECT_SECRET", "CLOUDBRANCH_TURN_SECRET"]
)
def test_a_short_secret_stops_start_up_naming_the_setting(setting: str, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDBRANCH_")},
        "CLOUDBRANCH_DEV_MODE": "0",
        "CLOUDBRANCH_JWT_SECRET": "j" * 32,
        "CLOUDBRANCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cb.db",
        setting: "a" * 31,
    }
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert setting in done.stderr and "32 bytes" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- logs


async def test_a_crash_inside_a_request_logs_no_token_account_or_phone(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    app = create_app(Settings(**{**TEST_SETTINGS, "database_url": database_url}))
    configure_logging("json", "INFO")  # after create_app: bound to this test's stderr

    async def explode(request: web.Request, _response: web.StreamResponse) -> None:
        if "X-Crash" in request.headers:
            # Outside every middleware: aiohttp's own error logger reports it.
            raise RuntimeError(f"boom {request.headers['Authorization']} {ACCOUNT} {PHONE}")

    app.on_response_prepare.append(explode)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(base, session)
            token = await api.token("supervisor", "SUP1")
            headers = {"Authorization": f"Bearer {token}", "X-Crash": "1"}
            try:
                async with session.get(
                    f"{base}/api/v1/calls/{PHONE}?access_token={token}&account={ACCOUNT}",
                    headers=headers,
                ) as response:
                    assert response.status == 500
            except aiohttp.ServerDisconnectedError:
                pass  # aiohttp may drop the connection after logging the error
            # asyncio's logger, with a traceback.
            asyncio.get_running_loop().call_exception_handler(
                {"message": f"lost {token}", "exception": ValueError(f"{ACCOUNT} {PHONE}")}
            )
            logging.getLogger("sqlalchemy.engine").warning("param %s %s", ACCOUNT, token)
            logging.getLogger("aioice.ice").info("candidate for %s", PHONE)
    finally:
        await runner.cleanup()
        err = capsys.readouterr().err
        structlog.reset_defaults()
    assert "Unhandled exception" in err and "Traceback" in err, err  # the capture works
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    loggers = {e.get("logger") for e in events}
    assert {"aiohttp.server", "aiohttp.access", "asyncio", "sqlalchemy.engine"} <= loggers
    for secret in (token, *token.split("."), ACCOUNT, PHONE):
        assert secret not in err, secret


# --------------------------------------------------------------------------- sockets


async def test_an_ice_flood_is_cut_off_while_the_call_goes_on(api: Api) -> None:
    desk, desk_ws, customer, customer_ws, call_id = await active_call(api, "chen.li")
    candidate = {"candidate": "candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host"}
    flood = {"type": "webrtc.ice", "call_id": call_id, "candidate": candidate}
    sent = 0
    try:
        for _ in range(10_000):
            await customer_ws.ws.send_json(flood)
            sent += 1
    except (ConnectionError, RuntimeError):
        pass  # the server closed the socket mid-flood
    refusal = await customer_ws.expect("error", code="rate_limited", timeout=10)
    assert "webrtc.ice" in refusal["detail"] or "ICE" in refusal["detail"]
    assert await close_frame_code(customer_ws, within=10) == CLOSE_RATE_LIMITED
    # The desk got at most the budget, and the call itself goes on.
    await desk_ws.send({"type": "ping"})
    await desk_ws.expect("pong", timeout=10)
    relayed = [m for m in desk_ws.received if m["type"] == "webrtc.ice"]
    assert len(relayed) <= 200
    call = await desk.get(f"/api/v1/calls/{call_id}")
    assert call.status == 200 and call.body["state"] == "active", call
    started = await desk.post(
        f"/api/v1/calls/{call_id}/operations", {"kind": "balance_inquiry", "params": {}}
    )
    assert started.status == 201, started
    # The customer reconnects and is served again.
    back = await customer.connect()
    await back.send({"type": "ping"})
    await back.expect("pong")


# --------------------------------------------------------------------------- HTTP edges


async def test_a_slow_header_client_is_dropped_after_the_timeout(api: Api) -> None:
    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    loop = asyncio.get_running_loop()
    started = loop.time()
    closed = False
    try:
        while loop.time() - started < 15:
            writer.write(b"X-Slow: a\r\n")  # headers trickle in, never finished
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), timeout=0.3)
            except TimeoutError:
                continue
            if data == b"" or b"HTTP/1.1 4" in data:
                closed = True
                break
    except ConnectionError:
        closed = True
    finally:
        writer.close()
    assert closed, "a client that never finished its headers was kept"
    assert (await api.request("GET", "/healthz")).status == 200  # others are served


async def test_a_slow_body_is_408(api: Api) -> None:
    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/v1/desk/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 50\r\n\r\n{"username"'
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), timeout=15)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"request_timeout" in head


async def test_oversized_headers_are_refused(api: Api) -> None:
    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), timeout=15)
    writer.close()
    assert head.split(b" ", 2)[1] in (b"400", b"431"), head[:200]
    assert b"aiohttp" not in head and b"Python" not in head, head[:200]  # no banner here either


async def test_security_headers_and_no_banner(api: Api) -> None:
    reply = await api.request("GET", "/healthz")
    for name, value in (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ):
        assert reply.headers.get(name) == value, (name, reply.headers)
    assert "aiohttp" not in reply.headers.get("Server", "").lower()
    assert "python" not in reply.headers.get("Server", "").lower()
    problem = await api.request("GET", "/api/v1/stats")
    assert problem.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in reply.headers  # plain HTTP here


async def test_html_gets_a_strict_policy_and_no_framing(database_url: str) -> None:
    app = create_app(Settings(**{**TEST_SETTINGS, "database_url": database_url}))

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><p>hi</p>", content_type="text/html")

    async def own_policy(_request: web.Request) -> web.Response:
        response = web.Response(text="<!doctype html>", content_type="text/html")
        response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'self'"
        return response

    app.router.add_get("/page", page)
    app.router.add_get("/own", own_policy)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/page") as response:
                policy = response.headers["Content-Security-Policy"]
                assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
                assert "'unsafe-inline'" not in policy
                assert response.headers["X-Frame-Options"] == "DENY"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
            async with session.get(base + "/own") as response:
                # A page's own policy is kept, and the frame header agrees with it.
                assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
                assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    finally:
        await runner.cleanup()


async def test_head_works_where_get_does(api: Api) -> None:
    async with api.session.head(api.base_url + "/healthz") as response:
        assert response.status == 200
    supervisor = await api.supervisor()
    async with api.session.head(
        api.base_url + "/api/v1/stats", headers=supervisor.headers()
    ) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    "server_settings",
    [{"dev_mode": False, "jwt_secret": "p" * 40, "metrics_token": "m" * 40}],
)
async def test_metrics_need_their_token_outside_development(api: Api) -> None:
    assert_problem(await api.request("GET", "/metrics"), 401, "unauthorized")
    wrong = {"Authorization": "Bearer " + "x" * 40}
    assert_problem(await api.request("GET", "/metrics", headers=wrong), 401, "unauthorized")
    good = await api.request("GET", "/metrics", headers={"Authorization": "Bearer " + "m" * 40})
    assert good.status == 200 and "cloudbranch" in good.body
    for probe in ("/healthz", "/readyz"):
        assert (await api.request("GET", probe)).status == 200


async def test_money_is_ascii_digits_with_two_decimals_at_most(api: Api) -> None:
    desk, _, _, _, call_id = await active_call(api)
    path = f"/api/v1/calls/{call_id}/operations"
    for amount in ("１０.00", "10.001", "1e3", "٣٠٠", "0", "-1", "100000000.01", " 10", 10.5):
        reply = await desk.post(
            path, {"kind": "transfer", "params": {**SCAM_TRANSFER, "amount": amount}}
        )
        body = assert_problem(reply, 422, "validation_error", amount)
        assert "amount" in body["detail"], (amount, body)
    limit = await desk.post(
        path, {"kind": "limit_change", "params": {"channel": "mobile", "new_limit": "５0"}}
    )
    assert "new_limit" in assert_problem(limit, 422, "validation_error")["detail"]
