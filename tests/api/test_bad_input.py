"""Bad input anywhere gets a 4xx problem or a WebSocket ``error``, never a 5xx.

Three layers:

- a table of hand-written bad requests per endpoint with a body, and the
  problem each must get (status, code, and a detail naming the field);
- ids in URL paths, unknown routes and wrong methods;
- property-based fuzzing with hypothesis: random JSON values, field-shaped
  objects and raw bytes posted to every endpoint with a body, random text as
  call ids, and random message batches on a WebSocket.

Why the fuzzing runs the server in a thread: hypothesis drives synchronous test
functions and re-runs them once per example, which does not mix with the
function-scoped async fixtures of the harness (one server per example would be
far too slow). So one server per database runs on its own event loop in a
background thread (module scope), and each example talks to it with a blocking
client. Examples are derandomized, so a run is repeatable and CI cannot flake
on a new random draw; the example budget per endpoint is small (30).

Most tests run on SQLite only; those whose failure mode depends on the database
(text that PostgreSQL refuses) run on both.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from server.http.schemas import (
    CreateCallRequest,
    DevTokenRequest,
    LoginRequest,
    OfferRequest,
    PresenceRequest,
    WrapUpRequest,
)
from tests.api.harness import Api, Party, Reply, Socket
from tests.api.helpers import (
    BOTH_DATABASES,
    PROBLEM_TYPE,
    ServerThread,
    assert_problem,
    closed_with,
    http,
    ping_pong,
    seeded_database,
)

JUNK_ID = "0123456789abcdef0123456789abcdef"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with seeded_database(request, getattr(request, "param", "sqlite"), tmp_path) as url:
        yield url


@dataclass(frozen=True)
class BodyEndpoint:
    method: str
    path: str
    role: str | None  # None: public
    model: type[BaseModel]
    valid: dict[str, Any]  # a body that passes validation

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


BODY_ENDPOINTS = [
    BodyEndpoint(
        "POST",
        "/api/v1/desk/login",
        None,
        LoginRequest,
        {"username": "chen.li", "password": "nope"},
    ),
    BodyEndpoint(
        "POST", "/api/v1/dev/tokens", None, DevTokenRequest, {"role": "customer", "subject": "C1"}
    ),
    BodyEndpoint("POST", "/api/v1/calls", "customer", CreateCallRequest, {}),
    BodyEndpoint("PUT", "/api/v1/desk/presence", "specialist", PresenceRequest, {"state": "away"}),
    BodyEndpoint(
        "POST", f"/api/v1/calls/{JUNK_ID}/accept", "specialist", OfferRequest, {"offer_id": "o"}
    ),
    BodyEndpoint(
        "POST", f"/api/v1/calls/{JUNK_ID}/decline", "specialist", OfferRequest, {"offer_id": "o"}
    ),
    BodyEndpoint(
        "POST", f"/api/v1/calls/{JUNK_ID}/wrap-up", "specialist", WrapUpRequest, {"code": "x"}
    ),
]


class Clients:
    """One party per role, and raw requests as any of them."""

    def __init__(self, api: Api, parties: dict[str, Party]) -> None:
        self.api = api
        self.parties = parties

    @classmethod
    async def make(cls, api: Api) -> Clients:
        return cls(
            api,
            {
                "customer": await api.customer("C1001"),
                "specialist": await api.specialist("chen.li"),
                "supervisor": await api.supervisor(),
            },
        )

    def headers(self, role: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = self.parties[role].headers() if role else {}
        return {**base, **(extra or {})}

    async def raw(
        self, endpoint: BodyEndpoint, data: Any, content_type: str = "application/json"
    ) -> Reply:
        return await self.api.request(
            endpoint.method,
            endpoint.path,
            headers=self.headers(endpoint.role, {"Content-Type": content_type}),
            data=data,
        )

    async def send(self, endpoint: BodyEndpoint, body: Any) -> Reply:
        return await self.raw(endpoint, json.dumps(body).encode())


@pytest.fixture
async def clients(api: Api) -> Clients:
    return await Clients.make(api)


# --------------------------------------------------------------------------- bodies
# Each test walks every endpoint with a body on one server: a server per case
# would cost more than the cases themselves.


async def test_the_valid_body_of_the_table_passes_validation(clients: Clients) -> None:
    """Control for the tests below: each endpoint's ``valid`` body gets past parsing."""
    for endpoint in BODY_ENDPOINTS:
        reply = await clients.send(endpoint, endpoint.valid)
        assert reply.status not in (400, 413, 415, 422) and reply.status < 500, (endpoint, reply)


MALFORMED = [b"{", b'{"a": }', b"{'single': 'quotes'}", b"\xff\xfe\x00", b"nul\x00", b'{"a": 1} x']
UNPARSABLE = [  # valid JSON by the grammar, but beyond what Python's parser takes
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b"1" * 5000,
]


async def test_malformed_json_is_400(clients: Clients) -> None:
    for endpoint in BODY_ENDPOINTS:
        for raw in MALFORMED + UNPARSABLE:
            reply = await clients.raw(endpoint, raw)
            assert_problem(reply, 400, "malformed_json", (endpoint.id, raw[:20]))


async def test_json_that_is_not_an_object_is_422(clients: Clients) -> None:
    for endpoint in BODY_ENDPOINTS:
        for body in ([], [{"a": 1}], 3, 2.5, "text", True, None):
            reply = await clients.send(endpoint, body)
            problem = assert_problem(reply, 422, "validation_error", (endpoint.id, body))
            assert "object" in problem["detail"], (endpoint.id, body)


async def test_a_body_that_is_not_json_is_415(clients: Clients) -> None:
    for endpoint in BODY_ENDPOINTS:
        form = "application/x-www-form-urlencoded"
        reply = await clients.raw(endpoint, b"username=chen.li", form)
        assert_problem(reply, 415, "unsupported_media_type", endpoint.id)


async def test_a_missing_body_is_400_unless_optional(clients: Clients) -> None:
    for endpoint in BODY_ENDPOINTS:
        reply = await clients.raw(endpoint, b"")
        if endpoint.model is CreateCallRequest:
            assert reply.status == 201, reply  # every field is optional: "{}"
        else:
            assert_problem(reply, 400, "malformed_json", endpoint.id)


async def test_a_body_over_the_limit_is_413(clients: Clients, api: Api) -> None:
    limit = 64 * 1024

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit still holds
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    big = json.dumps({"note": "x" * (limit + 10)}).encode()
    for endpoint in BODY_ENDPOINTS:
        assert_problem(await clients.raw(endpoint, big), 413, "payload_too_large", endpoint.id)
        chunked = await clients.raw(endpoint, chunks())
        assert_problem(chunked, 413, "payload_too_large", (endpoint.id, "chunked"))
    # The server keeps answering.
    assert (await api.request("GET", "/healthz")).status == 200


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_every_registered_endpoint_refuses_junk_with_a_4xx(clients: Clients) -> None:
    """Driven by the route registry, so endpoints added later are covered too: junk
    bodies and junk ids as a caller of an allowed role get a 4xx problem."""
    from server.http.registry import registry

    junk_bodies: list[bytes] = [b"{", b"[1]", b"1" * 5000, b"[" * 5000, b"x" * (65 * 1024)]
    checked = 0
    for endpoint in registry.endpoints:
        path = re.sub(r"\{\w+\}", "%00junk", endpoint.path)
        role = endpoint.roles[0] if endpoint.roles else None
        headers = clients.headers(role, JSON)
        if endpoint.body is None:
            reply = await clients.api.request(endpoint.method, path, headers=headers)
            if "{" in endpoint.path:
                assert_problem(reply, reply.status, what=(endpoint.method, path))
                assert 400 <= reply.status < 500, (endpoint.method, path, reply)
            continue
        for raw in junk_bodies:
            reply = await clients.api.request(endpoint.method, path, headers=headers, data=raw)
            assert_problem(reply, reply.status, what=(endpoint.method, path, raw[:10]))
            assert 400 <= reply.status < 500, (endpoint.method, path, raw[:10], reply)
            checked += 1
    assert checked >= len(junk_bodies) * len(BODY_ENDPOINTS)


VALIDATION_CASES: list[tuple[int, dict[str, Any], str]] = [
    # (index into BODY_ENDPOINTS, body, field the detail must name)
    (0, {"username": 5, "password": "x"}, "username"),
    (0, {"username": "chen.li"}, "password"),
    (0, {"username": "u" * 65, "password": "x"}, "username"),
    (0, {"username": "chen.li", "password": "x", "otp": "1"}, "otp"),
    (0, {"username": "chen\x00li", "password": "x"}, "username"),
    (1, {"role": "admin", "subject": "C1001"}, "role"),
    (1, {"role": "customer", "subject": "C 1001"}, "subject"),
    (1, {"role": "customer", "subject": "C" * 33}, "subject"),
    (2, {"dialect": "WUU!"}, "dialect"),
    (2, {"dialect": ["wuu"]}, "dialect"),
    (2, {"intent": "i" * 201}, "intent"),
    (2, {"intent": 42}, "intent"),
    (2, {"ticket": ""}, "ticket"),
    (2, {"callback_allowed": [1]}, "callback_allowed"),
    (2, {"priority": "urgent"}, "priority"),  # a customer cannot pick their own priority
    (2, {"intent": "balance\x00"}, "intent"),
    (3, {"state": "busy"}, "state"),
    (3, {"state": 1}, "state"),
    (3, {}, "state"),
    (4, {"offer_id": "o" * 65}, "offer_id"),
    (4, {"offer_id": {"id": "o"}}, "offer_id"),
    (5, {"offer": "o"}, "offer_id"),
    (6, {"code": ""}, "code"),
    (6, {"code": "c" * 65}, "code"),
    (6, {"code": "done", "note": "n" * 2001}, "note"),
    (6, {"code": "done", "note": "call\x00back"}, "note"),
    (6, {"code": "done", "tags": {"\x00": 1}}, "tags"),
]


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_invalid_fields_are_422_naming_the_field(clients: Clients) -> None:
    for index, body, field in VALIDATION_CASES:
        endpoint = BODY_ENDPOINTS[index]
        reply = await clients.send(endpoint, body)
        problem = assert_problem(reply, 422, "validation_error", (endpoint.id, body))
        assert field in problem["detail"], (endpoint.id, body, problem)
    # Nothing above got through: C1001 has no call.
    customer = clients.parties["customer"]
    assert (await customer.post("/api/v1/calls", {})).status == 201


async def test_unpaired_surrogates_are_422(clients: Clients) -> None:
    endpoint = BODY_ENDPOINTS[2]
    for raw in (b'{"intent": "a\\ud800b"}', b'{"\\udfff": 1}'):
        assert_problem(await clients.raw(endpoint, raw), 422, "validation_error")


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_text_the_database_accepts_is_stored_as_sent(clients: Clients) -> None:
    """Control for the NUL cases: unusual but valid text goes through unchanged."""
    # The call's intent is a fixed list now; the wrap-up code is free text.
    desk, desk_ws = await clients.api.available_specialist("chen.li")
    customer = clients.parties["customer"]
    created = await customer.post("/api/v1/calls", {"intent": "other"})
    assert created.status == 201, created
    call_id = created.body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=call_id)
    await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    await desk.post(f"/api/v1/calls/{call_id}/end")
    code = "转账 – 😀 \t tab\u200b"
    wrapped = await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": code})
    assert wrapped.status == 200, wrapped
    stored = await clients.parties["supervisor"].get(f"/api/v1/calls/{call_id}")
    assert stored.body["wrap_up_code"] == code
    await desk_ws.close()


# --------------------------------------------------------------------------- ids, routes, methods

ODD_IDS = [
    "nope",
    "x" * 1000,
    "通话-😀",
    "%00",
    "abc%00def",
    "%F0%9F%98%80",
    "%ED%A0%80",  # an encoded surrogate
    "%20",
    "..%2F..%2Fhealthz",
    "'; DROP TABLE calls; --",
]


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_unknown_call_ids_are_404_or_409_never_5xx(clients: Clients) -> None:
    customer = clients.parties["customer"]
    specialist = clients.parties["specialist"]
    supervisor = clients.parties["supervisor"]
    for raw_id in ODD_IDS:
        call_id = urllib.parse.quote(raw_id, safe="%")
        for party, method, suffix, body in [
            (customer, "GET", "", None),
            (customer, "DELETE", "", None),
            (supervisor, "GET", "", None),
            (supervisor, "GET", "/timeline", None),
            (specialist, "POST", "/end", None),
            (specialist, "POST", "/wrap-up", {"code": "x"}),
        ]:
            path = f"/api/v1/calls/{call_id}{suffix}"
            reply = await party.request(method, path, body)
            assert_problem(reply, 404, "call_not_found", (method, path))
        # Offers are checked first, so an unknown call is an offer that is not live;
        # the same answer as for a real call, so nothing leaks about which ids exist.
        for action in ("accept", "decline"):
            reply = await specialist.post(f"/api/v1/calls/{call_id}/{action}", {"offer_id": "nope"})
            assert_problem(reply, 409, "offer_expired", (action, call_id))


async def test_unknown_routes_are_404_problems(api: Api) -> None:
    # ("/" is the development mode's list of pages: see tests/browser for outside it.)
    for path in ("/api/v1/nothing", "/api/v2/calls", "/api/v1/calls/x/y/z", "/favicon.ico", "/x"):
        assert_problem(await api.request("GET", path), 404, "not_found", path)


async def test_wrong_methods_are_405_problems_with_allow(api: Api) -> None:
    for method, path, allowed in [
        ("PATCH", f"/api/v1/calls/{JUNK_ID}", {"GET", "DELETE"}),
        ("GET", "/api/v1/desk/login", {"POST"}),
        ("DELETE", "/api/v1/stats", {"GET"}),
        ("POST", "/healthz", {"GET"}),
        ("PUT", "/api/v1/calls", {"POST"}),
    ]:
        reply = await api.request(method, path, {} if method != "GET" else None)
        assert_problem(reply, 405, "method_not_allowed", (method, path))
        allow = {m.strip() for m in reply.headers.get("Allow", "").split(",")} - {"HEAD"}
        assert allow == allowed, (method, path, reply.headers)


# --------------------------------------------------------------------------- WebSocket


@pytest.fixture
async def welcomed(api: Api) -> Socket:
    supervisor = await api.supervisor()
    return await supervisor.connect()


BAD_MESSAGES = [
    ("{", "malformed_json"),
    ("not json at all", "malformed_json"),
    ("[" * 5000 + "]" * 5000, "malformed_json"),
    ('{"type": ' + "9" * 5000 + "}", "malformed_json"),
    ("[1, 2]", "malformed_message"),
    ("42", "malformed_message"),
    ('"ping"', "malformed_message"),
    ("null", "malformed_message"),
    ("{}", "malformed_message"),
    ('{"type": 7}', "malformed_message"),
    ('{"type": null}', "malformed_message"),
    ('{"type": "call.explode"}', "unknown_type"),
    ('{"type": "\\ud800"}', "unknown_type"),
    ('{"type": "' + "x" * 10_000 + '"}', "unknown_type"),
    ('{"type": "hello", "token": "again"}', "already_welcomed"),
]


async def test_bad_websocket_messages_get_an_error_and_the_socket_stays_open(
    welcomed: Socket,
) -> None:
    for text, code in BAD_MESSAGES:
        await welcomed.ws.send_str(text)
        error = await welcomed.expect("error")
        assert error["code"] == code and error["detail"], (text[:40], error)
        assert len(error["detail"]) < 200  # an echo of the input stays short
        await ping_pong(welcomed)


async def test_binary_frames_get_an_error_and_the_socket_stays_open(welcomed: Socket) -> None:
    await welcomed.ws.send_bytes(b'{"type": "ping"}')
    error = await welcomed.expect("error")
    assert error["code"] == "unsupported"
    await ping_pong(welcomed)


async def test_an_oversized_message_closes_only_that_socket(api: Api, welcomed: Socket) -> None:
    customer = await api.customer("C1002")
    bystander = await customer.connect()
    await welcomed.ws.send_str(json.dumps({"type": "ping", "pad": "x" * (100 * 1024)}))
    assert await closed_with(welcomed) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await ping_pong(bystander)
    # And new clients are served.
    fresh = await (await api.supervisor("SUP2")).connect()
    await ping_pong(fresh)
    assert (await customer.post("/api/v1/calls", {})).status == 201
    await bystander.expect("queue.update", position=1)


# --------------------------------------------------------------------------- fuzzing

_TEXT = st.text(st.characters(exclude_categories=()), max_size=24)  # NUL and surrogates too
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=12,
)


def shaped_like(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the model's field names (any subset) holding random values, and
    sometimes an extra field, so fuzzing gets past "not an object" into validation."""
    fields = {name: JSON_VALUES for name in model.model_fields}
    return st.fixed_dictionaries({}, optional={**fields, "extra": JSON_VALUES})


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII: surrogates and NUL travel as \u escapes


def request_bodies(model: type[BaseModel]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        JSON_VALUES.map(encoded),
        shaped_like(model).map(encoded),
        st.binary(max_size=64),
    )


@dataclass(frozen=True)
class FuzzTarget:
    base_url: str
    tokens: dict[str, str]

    def headers(self, role: str | None, content_type: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        if content_type:
            headers["Content-Type"] = "application/json"
        return headers


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    """One server per database for every fuzzing example of this module."""
    with (
        seeded_database(request, request.param, tmp_path_factory.mktemp("fuzz")) as url,
        ServerThread(database_url=url) as server,
    ):
        base = server.base_url
        tokens: dict[str, str] = {}
        for role, subject in (("customer", "C1001"), ("supervisor", "SUP1")):
            body = encoded({"role": role, "subject": subject})
            reply = http(base, "POST", "/api/v1/dev/tokens", body, JSON)
            tokens[role] = reply.body["token"]
        login = encoded({"username": "chen.li", "password": "branch-demo"})
        tokens["specialist"] = http(base, "POST", "/api/v1/desk/login", login, JSON).body["token"]
        yield FuzzTarget(base, tokens)


def assert_not_a_crash(reply: Reply, what: str) -> None:
    assert reply.status < 500, (what, reply)
    if reply.status >= 400:
        assert reply.headers.get("Content-Type", "").startswith(PROBLEM_TYPE), (what, reply)
        assert isinstance(reply.body, dict) and reply.body.get("code"), (what, reply)


FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def registered_body_endpoints() -> list[BodyEndpoint]:
    """Every endpoint with a body in the route registry (so new ones are fuzzed too),
    called with junk path ids by the first role it allows."""
    import server.app  # noqa: F401  (importing the app registers every route)
    from server.http.registry import registry

    return [
        BodyEndpoint(
            e.method,
            re.sub(r"\{\w+\}", JUNK_ID, e.path),
            e.roles[0] if e.roles else None,
            e.body,
            {},
        )
        for e in registry.endpoints
        if e.body is not None
    ]


@pytest.mark.parametrize("endpoint", registered_body_endpoints(), ids=lambda e: e.id)
@FUZZ
@given(data=st.data())
def test_fuzzed_bodies_never_cause_a_5xx(
    fuzz_target: FuzzTarget, endpoint: BodyEndpoint, data: st.DataObject
) -> None:
    body = data.draw(request_bodies(endpoint.model), label="body")
    headers = fuzz_target.headers(endpoint.role, content_type=True)
    reply = http(fuzz_target.base_url, endpoint.method, endpoint.path, body, headers)
    assert_not_a_crash(reply, f"{endpoint.id} {body!r}")


ID_ENDPOINTS = [
    ("customer", "GET", ""),
    ("customer", "DELETE", ""),
    ("supervisor", "GET", "/timeline"),
    ("specialist", "POST", "/end"),
]


@pytest.mark.parametrize(("role", "method", "suffix"), ID_ENDPOINTS)
@FUZZ
@given(call_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=80))
def test_fuzzed_call_ids_never_cause_a_5xx(
    fuzz_target: FuzzTarget, role: str, method: str, suffix: str, call_id: str
) -> None:
    path = f"/api/v1/calls/{urllib.parse.quote(call_id, safe='')}{suffix}"
    reply = http(fuzz_target.base_url, method, path, None, fuzz_target.headers(role))
    assert_not_a_crash(reply, path)
    assert reply.status in (404, 405), (path, reply)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(messages=st.lists(JSON_VALUES, min_size=1, max_size=25))
def test_fuzzed_websocket_messages_each_get_one_answer(
    fuzz_target: FuzzTarget, messages: list[Any]
) -> None:
    async def converse() -> None:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(fuzz_target.base_url + "/api/v1/ws", heartbeat=None)
            socket = Socket(ws)
            welcome = await socket.hello(fuzz_target.tokens["supervisor"])
            assert welcome["type"] == "welcome"
            for message in messages:
                await ws.send_str(json.dumps(message))
                answer = await socket.next()
                is_ping = isinstance(message, dict) and message.get("type") == "ping"
                assert answer["type"] == ("pong" if is_ping else "error"), (message, answer)
            await ping_pong(socket)
            await ws.close()

    asyncio.run(converse())
