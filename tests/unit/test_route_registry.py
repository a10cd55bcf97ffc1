"""The route registry on its own: roles, bodies and the answer check.

A registry of its own (not the application's), routes that answer what a test
tells them to, served on a loopback port: a deliberately wrong answer must come
back as ``500 response_mismatch`` naming the route and the field, and a right one
must pass untouched.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import BaseModel

from server.appkeys import SETTINGS
from server.auth.principal import Role
from server.auth.tokens import issue_token
from server.errors import Conflict
from server.http.problems import problem_middleware
from server.http.registry import Registry, RouteContext
from server.http.respond import json_response
from server.http.schemas import Request
from server.settings import Settings


class Item(BaseModel):
    item_id: str
    count: int
    tags: list[str] = []


class Note(BaseModel):
    text: str


class Wrapper(BaseModel):
    item: Item
    items: list[Item]


class NoteRequest(Request):
    text: str


# What the routes below answer: set by each test before it asks.
@dataclass
class Answer:
    status: int = 200
    data: Any = None
    raise_conflict: bool = False


def build_registry(answer: Answer) -> Registry:
    routes = Registry()

    @routes.route("GET", "/one", "one item", roles=("customer",), response=Item)
    async def one(ctx: RouteContext[None]) -> web.Response:
        if answer.raise_conflict:
            raise Conflict("not now", code="busy")
        return json_response(answer.data, status=answer.status)

    @routes.route("GET", "/many", "items", roles=("supervisor",), response=Item, many=True)
    async def many(ctx: RouteContext[None]) -> web.Response:
        return json_response(answer.data, status=answer.status)

    @routes.route("GET", "/nested", "nested", response=Wrapper, errors=(409,))
    async def nested(ctx: RouteContext[None]) -> web.Response:
        if answer.raise_conflict:
            raise Conflict("not now", code="busy", extra={"choices": ["a", "b"]})
        return json_response(answer.data, status=answer.status)

    @routes.route(
        "POST", "/notes", "a note", roles=("customer",), body=NoteRequest, response=Note,
        status=201, also=(200,), body_optional=False,
    )  # fmt: skip
    async def notes(ctx: RouteContext[NoteRequest]) -> web.Response:
        assert ctx.principal.role is Role.CUSTOMER
        return json_response({"text": ctx.body.text}, status=answer.status)

    @routes.route("GET", "/undeclared", "JSON without a model")
    async def undeclared(ctx: RouteContext[None]) -> web.Response:
        return json_response({"status": "ok"})

    @routes.route("GET", "/dev", "development only", response=Note, dev_only=True)
    async def dev(ctx: RouteContext[None]) -> web.Response:
        return json_response({"text": "dev"})

    return routes


@dataclass
class Served:
    base_url: str
    session: aiohttp.ClientSession
    answer: Answer
    settings: Settings

    async def call(
        self, method: str, path: str, role: str | None = "customer", body: Any = None
    ) -> tuple[int, Any]:
        headers = {}
        if role is not None:
            headers["Authorization"] = f"Bearer {issue_token(self.settings, Role(role), 'C1001')}"
        async with self.session.request(
            method, self.base_url + path, headers=headers, json=body
        ) as response:
            return response.status, json.loads(await response.text())


async def _serve(check: bool, dev_mode: bool = True) -> AsyncIterator[Served]:
    settings = Settings(
        dev_mode=dev_mode,
        check_responses=check,
        log_level="WARNING",
        jwt_secret="route-registry-test-secret-0123456789abcdef",
    )
    answer = Answer()
    app = web.Application(middlewares=[problem_middleware])
    app[SETTINGS] = settings
    build_registry(answer).install(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            yield Served(f"http://127.0.0.1:{port}", session, answer, settings)
    finally:
        await runner.cleanup()


@pytest.fixture
async def checked() -> AsyncIterator[Served]:
    async for served in _serve(check=True):
        yield served


@pytest.fixture
async def unchecked() -> AsyncIterator[Served]:
    async for served in _serve(check=False):
        yield served


def mismatch(reply: tuple[int, Any], route: str, *words: str) -> None:
    status, body = reply
    assert status == 500, reply
    assert body["code"] == "response_mismatch", body
    assert route in body["detail"], body
    for word in words:
        assert word in body["detail"], (word, body)


# ---------------------------------------------------------------------- roles and bodies


async def test_roles_are_enforced_by_the_registry(checked: Served) -> None:
    status, body = await checked.call("GET", "/one", role=None)
    assert (status, body["code"]) == (401, "unauthorized"), body
    status, body = await checked.call("GET", "/one", role="specialist")
    assert (status, body["code"]) == (403, "wrong_role"), body
    assert body["detail"] == "this needs the customer role"


async def test_the_body_is_parsed_and_validated_by_the_registry(checked: Served) -> None:
    checked.answer.status = 201
    assert await checked.call("POST", "/notes", body={"text": "hi"}) == (201, {"text": "hi"})
    status, body = await checked.call("POST", "/notes", body={"text": 5})
    assert (status, body["code"]) == (422, "validation_error"), body
    assert "text" in body["detail"]
    status, body = await checked.call("POST", "/notes")
    assert (status, body["code"]) == (400, "malformed_json"), body


async def test_a_development_route_is_not_found_outside_development_mode() -> None:
    async for served in _serve(check=True, dev_mode=False):
        status, body = await served.call("GET", "/dev", role=None)
        assert (status, body["code"]) == (404, "not_found"), body
    async for served in _serve(check=True, dev_mode=True):
        assert await served.call("GET", "/dev", role=None) == (200, {"text": "dev"})


# ---------------------------------------------------------------------- the answer check


async def test_a_right_answer_passes_untouched(checked: Served) -> None:
    checked.answer.data = {"item_id": "a", "count": 2, "tags": ["x"]}
    assert await checked.call("GET", "/one") == (200, checked.answer.data)
    checked.answer.data = [{"item_id": "a", "count": 2}, {"item_id": "b", "count": 0}]
    assert await checked.call("GET", "/many", role="supervisor") == (200, checked.answer.data)


async def test_a_field_of_the_wrong_type_is_caught(checked: Served) -> None:
    checked.answer.data = {"item_id": "a", "count": "2"}  # a string where an int is declared
    mismatch(await checked.call("GET", "/one"), "GET /one", "count")


async def test_a_missing_field_is_caught(checked: Served) -> None:
    checked.answer.data = {"item_id": "a"}
    mismatch(await checked.call("GET", "/one"), "GET /one", "count")


async def test_an_undeclared_field_is_caught_even_nested(checked: Served) -> None:
    checked.answer.data = {"item_id": "a", "count": 1, "secret": "x"}
    mismatch(await checked.call("GET", "/one"), "GET /one", "secret")
    checked.answer.data = {
        "item": {"item_id": "a", "count": 1},
        "items": [{"item_id": "b", "count": 1}, {"item_id": "c", "count": 1, "extra": 1}],
    }
    mismatch(await checked.call("GET", "/nested", role=None), "GET /nested", "items.1.extra")


async def test_many_checks_every_element_and_the_array(checked: Served) -> None:
    checked.answer.data = [{"item_id": "a", "count": 1}, {"item_id": "b", "count": None}]
    mismatch(await checked.call("GET", "/many", role="supervisor"), "GET /many", "1.count")
    checked.answer.data = {"item_id": "a", "count": 1}  # one object where an array is declared
    mismatch(await checked.call("GET", "/many", role="supervisor"), "GET /many")


async def test_an_undeclared_success_status_is_caught(checked: Served) -> None:
    checked.answer.data = {"item_id": "a", "count": 1}
    checked.answer.status = 201
    mismatch(await checked.call("GET", "/one"), "GET /one", "201")
    # ``also`` statuses are declared: 200 for the same request again.
    checked.answer.status = 200
    assert await checked.call("POST", "/notes", body={"text": "x"}) == (200, {"text": "x"})
    checked.answer.status = 202
    mismatch(await checked.call("POST", "/notes", body={"text": "x"}), "POST /notes", "202")


async def test_json_from_a_route_without_a_model_is_caught(checked: Served) -> None:
    mismatch(await checked.call("GET", "/undeclared", role=None), "GET /undeclared", "model")


async def test_problems_are_checked_against_the_documented_statuses(checked: Served) -> None:
    # 409 is documented for /nested: the problem passes, with its shape checked.
    checked.answer.raise_conflict = True
    # An extension member (RFC 9457) is allowed beside the Problem fields.
    status, body = await checked.call("GET", "/nested", role=None)
    assert (status, body["code"], body["choices"]) == (409, "busy", ["a", "b"]), body
    # /one documents no 409.
    mismatch(await checked.call("GET", "/one"), "GET /one", "409")


async def test_without_the_setting_nothing_is_checked(unchecked: Served) -> None:
    unchecked.answer.data = {"item_id": "a", "count": "2", "secret": "x"}
    assert await unchecked.call("GET", "/one") == (200, unchecked.answer.data)
