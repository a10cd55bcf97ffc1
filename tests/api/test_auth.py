"""Who may do what: tokens, roles, and each party's reach over calls and offers.

Runs on SQLite: authorisation does not depend on the database. The one check
whose failure mode does (a token subject reaching a query) also runs on PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.http.registry import registry
from server.settings import DEV_SECRET
from tests.api.harness import Api, Party, RunningServer
from tests.api.helpers import (
    BOTH_DATABASES,
    assert_problem,
    closed_with,
    ping_pong,
    seeded_database,
    staff_session_token,
)

IDP_SECRET = "bank-idp-shared-secret-for-tests-0123456789"
IDP_ISSUER = "bank-idp"
IDP_AUDIENCE = "cloudbranch"
OTHER_SECRET = "someone-elses-secret-0123456789abcdef"
OWN_ISSUER = "cloudbranch"
CLOSE_UNAUTHORIZED = 4401


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with seeded_database(request, getattr(request, "param", "sqlite"), tmp_path) as url:
        yield url


@pytest.fixture
def server_settings(request: pytest.FixtureRequest, rsa_keys: tuple[str, str]) -> dict[str, Any]:
    """How customer tokens are verified: ``hs256`` (default), ``rs256`` or ``none``."""
    kind = getattr(request, "param", "hs256")
    settings: dict[str, Any] = {"ws_hello_timeout_s": 0.5}
    if kind == "hs256":
        settings["customer_jwt_secret"] = IDP_SECRET
    elif kind == "rs256":
        settings["customer_jwt_public_key"] = rsa_keys[1]
    return settings


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    """(private PEM, public PEM) of a key made for this module."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def claims(
    sub: str = "C1001", iss: str = OWN_ISSUER, exp_in: float = 600, **extra: Any
) -> dict[str, Any]:
    now = int(time.time())
    # Identity-provider tokens carry the audience this service is configured with.
    audience = {"aud": IDP_AUDIENCE} if iss == IDP_ISSUER else {}
    return {"iss": iss, "sub": sub, "iat": now, "exp": now + int(exp_in), **audience, **extra}


def own_token(secret: str = DEV_SECRET, **kw: Any) -> str:
    return jwt.encode(claims(**kw), secret, algorithm="HS256")


def idp_token(secret: str = IDP_SECRET, **kw: Any) -> str:
    return jwt.encode(claims(iss=IDP_ISSUER, **kw), secret, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_by_hand(payload: dict[str, Any], key: bytes) -> str:
    """HS256 with any key bytes (pyjwt rightly refuses a PEM as an HMAC secret)."""
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(payload).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def unsigned(payload: dict[str, Any]) -> str:
    return _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(json.dumps(payload).encode()) + "."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- 401


PROTECTED = [(e.method, e.path) for e in registry.endpoints if e.roles]


async def test_every_protected_endpoint_needs_a_token(api: Api) -> None:
    assert len(PROTECTED) >= 10
    for method, template in PROTECTED:
        path = re.sub(r"\{\w+\}", "c0ffee", template)
        body: dict[str, Any] | None = None if method in ("GET", "DELETE") else {}
        for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
            reply = await api.request(method, path, body, headers=headers)
            assert_problem(reply, 401, "unauthorized")


# (what, token, code): each is refused on a customer and a supervisor endpoint.
UNUSABLE_TOKENS: list[tuple[str, str, str]] = [
    ("garbage", "not-a-jwt", "invalid_token"),
    ("three-junk-parts", "a.b.c", "invalid_token"),
    ("wrong-signature", own_token(secret=OTHER_SECRET), "invalid_token"),
    ("expired", own_token(exp_in=-3600, role="customer"), "token_expired"),
    ("unknown-issuer", own_token(iss="elsewhere", role="customer"), "invalid_token"),
    ("no-role", own_token(), "invalid_token"),
    ("unknown-role", own_token(role="admin"), "invalid_token"),
    ("empty-subject", own_token(role="customer", sub=""), "invalid_token"),
    ("long-subject", own_token(role="customer", sub="C" * 33), "invalid_token"),
    ("alg-none", unsigned(claims(role="supervisor", sub="SUP1")), "invalid_token"),
    (
        "no-expiry",
        jwt.encode({"iss": OWN_ISSUER, "sub": "SUP1", "role": "supervisor"}, DEV_SECRET),
        "invalid_token",
    ),
    ("idp-wrong-key", idp_token(secret=OTHER_SECRET), "invalid_token"),
    ("idp-expired", idp_token(exp_in=-3600), "token_expired"),
    # The IdP's secret does not make a token of ours, whatever it claims.
    (
        "idp-key-own-issuer",
        own_token(secret=IDP_SECRET, role="supervisor", sub="SUP1"),
        "invalid_token",
    ),
]


async def test_unusable_tokens_get_401_with_a_code(api: Api) -> None:
    for what, token, code in UNUSABLE_TOKENS:
        for method, path in [("GET", "/api/v1/stats"), ("POST", "/api/v1/calls")]:
            reply = await api.request(method, path, {}, headers=bearer(token))
            assert_problem(reply, 401, code, what)


async def test_own_tokens_made_with_the_dev_secret_work_in_development(api: Api) -> None:
    """The positive control for the table above: the same construction, valid, is accepted."""
    reply = await api.request(
        "GET", "/api/v1/stats", headers=bearer(own_token(role="supervisor", sub="SUP1"))
    )
    assert reply.status == 200, reply


# --------------------------------------------------------------------------- customer tokens


async def test_identity_provider_hs256_tokens_only_ever_make_a_customer(api: Api) -> None:
    token = idp_token(role="supervisor")  # the claim is ignored: IdP tokens are customers
    stats = await api.request("GET", "/api/v1/stats", headers=bearer(token))
    assert_problem(stats, 403, "wrong_role")
    presence = await api.request(
        "PUT", "/api/v1/desk/presence", {"state": "available"}, headers=bearer(token)
    )
    assert_problem(presence, 403, "wrong_role")

    created = await api.request("POST", "/api/v1/calls", {}, headers=bearer(token))
    assert created.status == 201, created
    socket = await api.socket()
    welcome = await socket.hello(token)
    assert welcome == {"type": "welcome", "role": "customer", "subject": "C1001"}
    await socket.close()


@pytest.mark.parametrize("server_settings", ["rs256"], indirect=True)
async def test_identity_provider_rs256_tokens(api: Api, rsa_keys: tuple[str, str]) -> None:
    private, public = rsa_keys
    good = jwt.encode(claims(iss=IDP_ISSUER, sub="C1002", role="specialist"), private, "RS256")
    created = await api.request("POST", "/api/v1/calls", {}, headers=bearer(good))
    assert created.status == 201, created
    desk_only = await api.request(
        "PUT", "/api/v1/desk/presence", {"state": "available"}, headers=bearer(good)
    )
    assert_problem(desk_only, 403, "wrong_role")

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(iss=IDP_ISSUER, sub="C1002"), other_key, "RS256")
    assert_problem(
        await api.request("GET", "/api/v1/stats", headers=bearer(forged)), 401, "invalid_token"
    )
    # Algorithm confusion: an HS256 token "signed" with the public key must not pass.
    confused = hs256_by_hand(claims(iss=IDP_ISSUER, sub="C1002"), public.encode())
    assert_problem(
        await api.request("POST", "/api/v1/calls", {}, headers=bearer(confused)),
        401,
        "invalid_token",
    )
    # With a key configured, the HS256 secret is not used for customer tokens.
    assert_problem(
        await api.request("POST", "/api/v1/calls", {}, headers=bearer(idp_token())),
        401,
        "invalid_token",
    )


@pytest.mark.parametrize("server_settings", ["none"], indirect=True)
async def test_identity_provider_tokens_without_configured_keys_are_refused(api: Api) -> None:
    assert_problem(
        await api.request("POST", "/api/v1/calls", {}, headers=bearer(idp_token())),
        401,
        "invalid_token",
    )


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_a_subject_with_control_characters_is_refused_not_queried(api: Api) -> None:
    for subject in ("C1001\x00", "C10\n01", "\x00"):
        token = idp_token(sub=subject)
        reply = await api.request("POST", "/api/v1/calls", {}, headers=bearer(token))
        assert_problem(reply, 401, "invalid_token")
        socket = await api.socket()
        await socket.send({"type": "hello", "token": token})
        error = await socket.next()
        assert error["type"] == "error" and error["code"] == "unauthorized"
        assert await closed_with(socket) == CLOSE_UNAUTHORIZED


# --------------------------------------------------------------------------- roles


async def _parties(api: Api) -> dict[str, Party]:
    return {
        "customer": await api.customer("C1001"),
        "specialist": await api.specialist("chen.li"),
        "supervisor": await api.supervisor(),
    }


async def test_each_endpoint_refuses_the_wrong_roles_with_403(api: Api) -> None:
    parties = await _parties(api)
    refused: set[tuple[str, str, str]] = set()
    for endpoint in registry.endpoints:
        if not endpoint.roles:
            continue
        path = re.sub(r"\{\w+\}", "c0ffee", endpoint.path)
        for role, party in parties.items():
            if role in endpoint.roles:
                continue
            body: dict[str, Any] | None = None if endpoint.method in ("GET", "DELETE") else {}
            reply = await party.request(endpoint.method, path, body)
            assert_problem(reply, 403, "wrong_role")
            refused.add((endpoint.method, endpoint.path, role))
    # The registry drives the loop; make sure it covered the contract's role rules.
    for must in [
        ("POST", "/api/v1/calls", "specialist"),
        ("POST", "/api/v1/calls", "supervisor"),
        ("DELETE", "/api/v1/calls/{call_id}", "specialist"),
        ("DELETE", "/api/v1/calls/{call_id}", "supervisor"),
        ("PUT", "/api/v1/desk/presence", "customer"),
        ("POST", "/api/v1/calls/{call_id}/accept", "customer"),
        ("POST", "/api/v1/calls/{call_id}/decline", "supervisor"),
        ("POST", "/api/v1/calls/{call_id}/end", "customer"),
        ("POST", "/api/v1/calls/{call_id}/wrap-up", "supervisor"),
        ("GET", "/api/v1/specialists", "customer"),
        ("GET", "/api/v1/specialists", "specialist"),
        ("GET", "/api/v1/stats", "customer"),
        ("GET", "/api/v1/stats", "specialist"),
    ]:
        assert must in refused, must


async def test_a_customer_cannot_read_or_cancel_another_customers_call(api: Api) -> None:
    owner = await api.customer("C1001")
    other = await api.customer("C1002")
    created = await owner.post("/api/v1/calls", {})
    call_id = created.body["call_id"]

    for reply in (
        await other.get(f"/api/v1/calls/{call_id}"),
        await other.delete(f"/api/v1/calls/{call_id}"),
        await other.get(f"/api/v1/calls/{call_id}/timeline"),
    ):
        body = assert_problem(reply, 404, "call_not_found")
        assert "C1001" not in body["detail"]

    # Same answer as for a call that does not exist: nothing leaks.
    missing = await other.get("/api/v1/calls/0123456789abcdef0123456789abcdef")
    assert_problem(missing, 404, "call_not_found")

    still = await owner.get(f"/api/v1/calls/{call_id}")
    assert still.status == 200 and still.body["state"] == "queued"
    own_timeline = await owner.get(f"/api/v1/calls/{call_id}/timeline")
    assert own_timeline.status == 200
    assert [e["kind"] for e in own_timeline.body["events"]] == ["queued"]


async def test_a_supervisor_reads_any_call_and_its_timeline(api: Api) -> None:
    customer = await api.customer("C1003")
    call_id = (await customer.post("/api/v1/calls", {"intent": "deposit"})).body["call_id"]
    supervisor = await api.supervisor()
    view = await supervisor.get(f"/api/v1/calls/{call_id}")
    assert view.status == 200
    assert view.body["customer_id"] == "C1003" and view.body["intent"] == "deposit"
    timeline = await supervisor.get(f"/api/v1/calls/{call_id}/timeline")
    assert timeline.status == 200 and timeline.body["call_id"] == call_id
    assert timeline.body["events"][0]["actor_id"] == "C1003"


async def test_a_specialist_reaches_only_offers_made_to_them_and_calls_they_hold(
    api: Api,
) -> None:
    holder, holder_ws = await api.available_specialist("chen.li")
    customer = await api.customer("C1001")
    call_id = (await customer.post("/api/v1/calls", {})).body["call_id"]
    offer = await holder_ws.expect("call.offered", call_id=call_id)
    offer_id = offer["offer_id"]

    intruder = await api.specialist("wang.fang")
    await intruder.connect()
    assert_problem(await intruder.get(f"/api/v1/calls/{call_id}"), 404, "call_not_found")
    for action in ("accept", "decline"):
        reply = await intruder.post(f"/api/v1/calls/{call_id}/{action}", {"offer_id": offer_id})
        assert_problem(reply, 409, "offer_expired")

    # The offered specialist may look at the call before answering, and the offer
    # survived the attempts above.
    assert (await holder.get(f"/api/v1/calls/{call_id}")).status == 200
    accepted = await holder.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer_id})
    assert accepted.status == 200, accepted

    assert_problem(await intruder.post(f"/api/v1/calls/{call_id}/end"), 404, "call_not_found")
    ended = await holder.post(f"/api/v1/calls/{call_id}/end")
    assert ended.status == 200 and ended.body["state"] == "wrap_up"
    wrap = await intruder.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "hijack"})
    assert_problem(wrap, 404, "call_not_found")
    done = await holder.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "balance_inquiry"})
    assert done.status == 200 and done.body["wrap_up_code"] == "balance_inquiry"


# --------------------------------------------------------------------------- login and dev tokens


async def test_login_with_wrong_credentials_is_401_and_does_not_say_which(api: Api) -> None:
    wrong_password = await api.request(
        "POST", "/api/v1/desk/login", {"username": "chen.li", "password": "branch-demo!"}
    )
    unknown_user = await api.request(
        "POST", "/api/v1/desk/login", {"username": "nobody.here", "password": "branch-demo"}
    )
    a = assert_problem(wrong_password, 401, "invalid_credentials")
    b = assert_problem(unknown_user, 401, "invalid_credentials")
    assert a["detail"] == b["detail"]
    right = await api.request(
        "POST", "/api/v1/desk/login", {"username": "chen.li", "password": "branch-demo"}
    )
    assert right.status == 200 and right.body["specialist_id"] == "S01"


PRODUCTION_SECRET = "a-production-secret-that-is-long-enough-0123456789"


@pytest.mark.parametrize("server_settings", [{"dev_mode": False, "jwt_secret": PRODUCTION_SECRET}])
async def test_outside_development_there_are_no_dev_tokens(api: Api, server: RunningServer) -> None:
    reply = await api.request(
        "POST", "/api/v1/dev/tokens", {"role": "supervisor", "subject": "SUP1"}
    )
    assert_problem(reply, 404, "not_found")
    # The development secret opens nothing here.
    dev_signed = own_token(role="supervisor", sub="SUP1")
    assert_problem(
        await api.request("GET", "/api/v1/stats", headers=bearer(dev_signed)), 401, "invalid_token"
    )
    # Desk login still works, with tokens signed by the configured secret.
    desk = await api.specialist("zhou.min")
    presence = await desk.put("/api/v1/desk/presence", {"state": "available"})
    assert presence.status == 200, presence
    # Outside development a staff token must belong to a live session of a staff row.
    supervisor = await staff_session_token(server, "SUP1", "supervisor")
    assert (await api.request("GET", "/api/v1/stats", headers=bearer(supervisor))).status == 200


# --------------------------------------------------------------------------- WebSocket


async def test_websocket_hello_with_a_bad_token_gets_error_and_4401(api: Api) -> None:
    for token in (
        "not-a-jwt",
        own_token(secret=OTHER_SECRET, role="customer"),
        own_token(exp_in=-3600, role="customer"),
        own_token(role="customer", pad="x" * 9000),  # over the 8 KiB a token may have
    ):
        socket = await api.socket()
        await socket.send({"type": "hello", "token": token})
        error = await socket.next()
        assert error["type"] == "error" and error["code"] == "unauthorized", token[:20]
        assert error["detail"]
        assert await closed_with(socket) == CLOSE_UNAUTHORIZED


async def test_websocket_first_message_must_be_a_hello(api: Api) -> None:
    for first in (
        {"type": "ping"},
        {"type": "hello"},  # no token
        {"type": "hello", "token": "x", "extra": 1},
        [1, 2],
    ):
        socket = await api.socket()
        await socket.ws.send_json(first)
        error = await socket.next()
        assert error["type"] == "error" and error["code"] == "unauthorized", first
        assert await closed_with(socket) == CLOSE_UNAUTHORIZED
    socket = await api.socket()
    await socket.ws.send_bytes(b'{"type": "hello"}')
    assert await closed_with(socket) == CLOSE_UNAUTHORIZED


async def test_websocket_without_hello_is_closed_4401_after_the_timeout(api: Api) -> None:
    silent = await api.socket()
    # A well-behaved client on the same server is unaffected.
    customer = await api.customer("C1005")
    good = await customer.connect()
    assert await closed_with(silent, within=5) == CLOSE_UNAUTHORIZED
    await ping_pong(good)
