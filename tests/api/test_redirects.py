"""Scenario redirects through the public API, on SQLite and PostgreSQL.

The mobile banking backend signs a redirect; the branch answers with a single-use
ticket; the customer's call made with it is routed with the redirect's priority
and shows the desk what happened. Everything refused is a 4xx problem (401 for
anything unsigned, before the body is even parsed), never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.appkeys import COMPONENTS
from server.db.banking import AuditEntry, Redirect
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Call
from server.errors import Conflict
from server.logging import configure_logging
from server.redirects.desk import TicketDesk
from server.redirects.schemas import RedirectRequest
from server.redirects.signature import sign
from server.settings import Settings
from tests.api.harness import Api, Reply, RunningServer
from tests.api.helpers import assert_problem

SECRET = "redirect-test-secret"
PATH = "/api/v1/redirects"
TRANSFER = {
    "amount": "50000",
    "currency": "CNY",
    "payee_account": "6222020200112233445",
    "payee_name": "王小明",
    "payee_bank": "中国工商银行",
}


@pytest.fixture
def server_settings() -> dict[str, Any]:
    # Room for the many deliberately bad signatures below (the throttle has tests of its own).
    return {"redirect_secret": SECRET, "redirect_address_limits": "1000/minute"}


def transfer_over_limit(event_id: str = "evt-1", customer_id: str = "C1001") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "kind": "transfer_over_limit",
        "context": {**TRANSFER, "daily_limit": "20000", "channel": "mobile"},
    }


def password_locked(event_id: str = "evt-2", customer_id: str = "C1002") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "kind": "password_locked",
        "context": {"failed_attempts": 5, "locked_at": "2026-01-02T09:00:00+08:00"},
    }


def signed_headers(
    raw: bytes, timestamp: int | None = None, secret: str = SECRET
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "X-CB-Timestamp": str(ts),
        "X-CB-Signature": sign(secret, ts, raw),
    }


async def post_raw(api: Api, raw: bytes, headers: dict[str, str]) -> Reply:
    return await api.request("POST", PATH, headers=headers, data=raw)


async def redirect(api: Api, body: Any, **sign_kw: Any) -> Reply:
    raw = json.dumps(body, ensure_ascii=False).encode()
    return await post_raw(api, raw, signed_headers(raw, **sign_kw))


async def count(server: RunningServer, model: Any, *where: Any) -> int:
    async with server.app[COMPONENTS].sessions() as session:
        total = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(total or 0)


async def audit_entries(server: RunningServer, kind: str) -> list[AuditEntry]:
    async with server.app[COMPONENTS].sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.kind == kind).order_by(AuditEntry.seq)
        )
        return list(rows)


# --------------------------------------------------------------------------- happy paths


async def test_a_transfer_redirect_opens_an_urgent_call_that_shows_the_desk_the_transfer(
    api: Api, server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The service's own log set-up, on this test's captured stderr, at every level.
    configure_logging("json", "DEBUG")
    try:
        ticket = await _redirect_to_an_urgent_call(api, server)
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {"redirect.received", "ticket.redeemed"} <= {e.get("event") for e in events}
    # Nothing of the payee and no ticket in the log.
    for secret in (TRANSFER["payee_name"], TRANSFER["payee_account"], ticket):
        assert secret not in err


async def _redirect_to_an_urgent_call(api: Api, server: RunningServer) -> str:
    before = time.time()
    issued = await redirect(api, transfer_over_limit())
    assert issued.status == 201, issued
    assert set(issued.body) == {"ticket", "deep_link", "expires_at"}
    ticket = issued.body["ticket"]
    assert issued.body["deep_link"] == f"cloudbranch://call?ticket={ticket}"
    expires = datetime.fromisoformat(issued.body["expires_at"])
    assert issued.body["expires_at"].endswith("Z") and expires.tzinfo is not None
    assert before + 1800 - 2 <= expires.timestamp() <= time.time() + 1800

    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer("C1001")
    created = await customer.post("/api/v1/calls", {"ticket": ticket})
    assert created.status == 201, created
    assert created.body["priority"] == "urgent"
    assert "context" not in created.body  # desk-only

    offer = await desk_ws.expect("call.offered", call_id=created.body["call_id"])
    shown = offer["context"]["redirect"]
    assert offer["context"]["priority"] == "urgent"
    assert shown["kind"] == "transfer_over_limit" and shown["event_id"] == "evt-1"
    assert shown["context"]["amount"] == "50000.00"
    assert shown["context"]["daily_limit"] == "20000.00"
    # The pending transfer, shaped as a transfer operation's params.
    assert shown["transfer"] == {**TRANSFER, "amount": "50000.00"}

    accepted = await desk.post(
        f"/api/v1/calls/{created.body['call_id']}/accept", {"offer_id": offer["offer_id"]}
    )
    transfer = accepted.body["context"]["redirect"]["transfer"]
    assert transfer["payee_account"] == TRANSFER["payee_account"]

    received = await audit_entries(server, "redirect.received")
    redeemed = await audit_entries(server, "ticket.redeemed")
    assert [e.subject_id for e in received] == ["evt-1"]
    assert [(e.actor_id, e.subject_id) for e in redeemed] == [("C1001", "evt-1")]
    return str(ticket)


async def test_a_password_lock_redirect_gets_the_redirect_priority(api: Api) -> None:
    issued = await redirect(api, password_locked())
    assert issued.status == 201, issued
    customer = await api.customer("C1002")
    created = await customer.post("/api/v1/calls", {"ticket": issued.body["ticket"]})
    assert created.status == 201, created
    assert created.body["priority"] == "redirect"
    supervisor = await api.supervisor()
    view = await supervisor.get(f"/api/v1/calls/{created.body['call_id']}")
    shown = view.body["context"]["redirect"]
    assert shown["kind"] == "password_locked" and "transfer" not in shown
    assert shown["context"] == {"failed_attempts": 5, "locked_at": "2026-01-02T01:00:00Z"}


# --------------------------------------------------------------------------- idempotency


async def test_the_same_event_again_gets_the_same_ticket_and_a_changed_one_is_409(
    api: Api, server: RunningServer
) -> None:
    first = await redirect(api, transfer_over_limit())
    assert first.status == 201, first

    again = await redirect(api, transfer_over_limit())
    assert again.status == 200, again
    assert again.body == first.body

    # The same content, spelt differently (key order, spacing, "50000" vs "50000.00").
    body = transfer_over_limit()
    body["context"] = dict(reversed(list({**body["context"], "amount": "50000.00"}.items())))
    raw = json.dumps(body, indent=2, ensure_ascii=True).encode()
    respelt = await post_raw(api, raw, signed_headers(raw))
    assert respelt.status == 200 and respelt.body == first.body, respelt

    changed = transfer_over_limit()
    changed["context"]["amount"] = "60000"
    assert_problem(await redirect(api, changed), 409, "event_conflict")
    assert_problem(
        await redirect(api, transfer_over_limit(customer_id="C1003")), 409, "event_conflict"
    )
    assert_problem(await redirect(api, password_locked(event_id="evt-1")), 409, "event_conflict")

    assert await count(server, Redirect) == 1
    assert len(await audit_entries(server, "redirect.replayed")) == 2
    rejected = await audit_entries(server, "redirect.rejected")
    assert [e.data["reason"] for e in rejected] == ["event_conflict"] * 3


async def test_a_replayed_event_whose_ticket_was_used_still_gets_the_same_answer(
    api: Api,
) -> None:
    first = await redirect(api, password_locked())
    customer = await api.customer("C1002")
    assert (await customer.post("/api/v1/calls", {"ticket": first.body["ticket"]})).status == 201
    again = await redirect(api, password_locked())
    assert again.status == 200 and again.body == first.body


# --------------------------------------------------------------------------- signatures


async def test_anything_not_signed_right_is_401_before_the_body_is_read(
    api: Api, server: RunningServer
) -> None:
    raw = json.dumps(transfer_over_limit()).encode()
    now = int(time.time())
    good = signed_headers(raw, now)
    json_only = {"Content-Type": "application/json"}
    cases: dict[str, tuple[bytes, dict[str, str]]] = {
        "no headers": (raw, json_only),
        "no timestamp": (raw, {**json_only, "X-CB-Signature": good["X-CB-Signature"]}),
        "no signature": (raw, {**json_only, "X-CB-Timestamp": good["X-CB-Timestamp"]}),
        "empty signature": (raw, {**good, "X-CB-Signature": ""}),
        "no scheme": (raw, {**good, "X-CB-Signature": good["X-CB-Signature"][7:]}),
        "sha1": (raw, {**good, "X-CB-Signature": "sha1=" + good["X-CB-Signature"][7:47]}),
        "short": (raw, {**good, "X-CB-Signature": good["X-CB-Signature"][:-1]}),
        "not hex": (raw, {**good, "X-CB-Signature": "sha256=" + "z" * 64}),
        "timestamp not a number": (raw, {**good, "X-CB-Timestamp": "yesterday"}),
        "timestamp in ms": (raw, {**good, "X-CB-Timestamp": str(now * 1000)}),
        # Margins of 10 s: the cases below take a moment to send (exact bounds: unit tests).
        "stale": (raw, signed_headers(raw, now - 310)),
        "from the future": (raw, signed_headers(raw, now + 310)),
        "wrong secret": (raw, signed_headers(raw, now, secret="guess")),
        "body changed": (raw.replace(b"50000", b"90000"), good),
        "timestamp changed": (raw, {**good, "X-CB-Timestamp": str(now - 1)}),
        # Signed or not, unparsable junk is a 401, not a 400: nothing is parsed unsigned.
        "junk body": (b"{not json", json_only),
        "form body": (b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}),
        "empty body": (b"", json_only),
    }
    for name, (body, headers) in cases.items():
        reply = await post_raw(api, body, headers)
        assert_problem(reply, 401, "invalid_signature", name)
    assert await count(server, Redirect) == 0

    rejected = await audit_entries(server, "redirect.rejected")
    assert len(rejected) == len(cases)
    flaws = {e.data["flaw"] for e in rejected}
    assert flaws == {
        "missing_timestamp",
        "missing_signature",
        "malformed_timestamp",
        "malformed_signature",
        "stale_timestamp",
        "mismatch",
    }
    for entry in rejected:
        assert entry.data["reason"] == "invalid_signature"
        assert entry.actor_id is None and entry.subject_id is None  # nothing trusted
        assert set(entry.data) <= {
            "reason",
            "flaw",
            "claimed_timestamp",
            "body_bytes",
            "body_sha256",
            "peer",
        }
        assert good["X-CB-Signature"][7:] not in json.dumps(entry.data)


async def test_the_boundary_of_the_skew_window(api: Api) -> None:
    # 290 s either way passes (a little room for the request's own travel time).
    for offset in (-290, 290):
        body = password_locked(event_id=f"evt-skew{offset}")
        reply = await redirect(api, body, timestamp=int(time.time()) + offset)
        assert reply.status == 201, (offset, reply)


@pytest.mark.parametrize("server_settings", [{}], ids=["no-secret"])
async def test_without_a_secret_redirects_are_not_configured(api: Api) -> None:
    raw = json.dumps(password_locked()).encode()
    for headers in (signed_headers(raw), signed_headers(raw, secret="")):
        assert_problem(await post_raw(api, raw, headers), 401, "redirects_not_configured")
    customer = await api.customer("C1002")
    reply = await customer.post("/api/v1/calls", {"ticket": "t" * 43})
    assert_problem(reply, 404, "ticket_not_found")


# --------------------------------------------------------------------------- bodies


async def test_signed_but_malformed_bodies_are_4xx(api: Api, server: RunningServer) -> None:
    def sent(raw: bytes, content_type: str = "application/json") -> Any:
        return post_raw(api, raw, {**signed_headers(raw), "Content-Type": content_type})

    assert_problem(await sent(b""), 400, "malformed_json")
    assert_problem(await sent(b"{not json"), 400, "malformed_json")
    assert_problem(await sent(b'{"a":' * 3000 + b"1" + b"}" * 3000), 400, "malformed_json")
    assert_problem(await sent(b"[1, 2]"), 422, "validation_error")
    assert_problem(await sent(b"a=1", "application/x-www-form-urlencoded"), 415)
    assert_problem(await sent(b"{}", "text/plain"), 415)

    def body_with(**context: Any) -> bytes:
        body = transfer_over_limit()
        body["context"] = {**body["context"], **context}
        return json.dumps(body).encode()

    invalid = {
        "unknown kind": json.dumps({**transfer_over_limit(), "kind": "card_lost"}).encode(),
        "no context": json.dumps(
            {k: v for k, v in transfer_over_limit().items() if k != "context"}
        ).encode(),
        "extra field": json.dumps({**transfer_over_limit(), "x": 1}).encode(),
        "amount number": body_with(amount=50000),
        "amount negative": body_with(amount="-1"),
        "amount 3 places": body_with(amount="1.001"),
        "currency": body_with(currency="rmb"),
        "payee account": body_with(payee_account="not-an-account"),
        "payee name NUL": body_with(payee_name="王\x00"),
        "unknown context field": body_with(remark="call me"),
        "event id": json.dumps({**transfer_over_limit(), "event_id": "a b"}).encode(),
    }
    for name, raw in invalid.items():
        assert_problem(await sent(raw), 422, "validation_error", name)

    oversized = json.dumps(
        {**transfer_over_limit(), "pad": "x" * server.settings.max_body_bytes}
    ).encode()
    assert_problem(await sent(oversized), 413, "payload_too_large")

    unknown = json.dumps(transfer_over_limit(customer_id="C9999")).encode()
    assert_problem(await sent(unknown), 404, "customer_not_found")
    assert await count(server, Redirect) == 0


# --------------------------------------------------------------------------- tickets


async def test_a_ticket_is_single_use_and_only_for_its_customer(
    api: Api, server: RunningServer
) -> None:
    ticket = (await redirect(api, transfer_over_limit())).body["ticket"]
    owner = await api.customer("C1001")
    stranger = await api.customer("C1002")

    assert_problem(
        await stranger.post("/api/v1/calls", {"ticket": ticket}), 403, "ticket_not_yours"
    )
    created = await owner.post("/api/v1/calls", {"ticket": ticket})
    assert created.status == 201, created
    # While that call is open a second tap returns it, whatever it carries.
    again = await owner.post("/api/v1/calls", {"ticket": ticket})
    assert again.status == 200 and again.body["call_id"] == created.body["call_id"]
    assert (await owner.delete(f"/api/v1/calls/{created.body['call_id']}")).status == 204

    assert_problem(await owner.post("/api/v1/calls", {"ticket": ticket}), 409, "ticket_used")
    assert_problem(
        await stranger.post("/api/v1/calls", {"ticket": ticket}), 403, "ticket_not_yours"
    )
    for unknown in ("A" * 43, "x", "../../etc", "t" * 64):
        reply = await owner.post("/api/v1/calls", {"ticket": unknown})
        assert_problem(reply, 404, "ticket_not_found", unknown)

    # A refused ticket opens no call; the owner can still call without one.
    plain = await owner.post("/api/v1/calls", {})
    assert plain.status == 201 and plain.body["priority"] == "normal"

    refused = await audit_entries(server, "ticket.refused")
    assert [e.data["reason"] for e in refused] == ["not_yours", "used", "not_yours"] + [
        "not_found"
    ] * 4
    assert refused[0].data["issued_to"] == "C1001" and refused[0].actor_id == "C1002"
    assert all(ticket not in json.dumps(e.data) for e in refused)


@pytest.mark.parametrize(
    "server_settings", [{"redirect_secret": SECRET, "redirect_ticket_ttl_s": 1e-6}], ids=["ttl"]
)
async def test_an_expired_ticket_is_refused(api: Api) -> None:
    # The ticket lives a microsecond: the customer's call, a round trip later, is
    # past its expiry without the test waiting (the boundary itself is tested on
    # explicit times below and in tests/unit/test_redirect_rules.py).
    issued = await redirect(api, password_locked())
    assert issued.status == 201, issued
    customer = await api.customer("C1002")
    reply = await customer.post("/api/v1/calls", {"ticket": issued.body["ticket"]})
    assert_problem(reply, 409, "ticket_expired")


async def test_a_ticket_is_good_until_its_ttl_has_passed(database_url: str) -> None:
    """The desk on a real database, with the time given: no waiting for it to pass."""
    settings = Settings(
        dev_mode=True, database_url=database_url, redirect_secret=SECRET, redirect_ticket_ttl_s=60
    )
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    desk = TicketDesk(settings, sessions)
    try:
        # Whole seconds: stored times keep microseconds, and a float's sub-microsecond
        # part would move the boundary off the instant this test names.
        issued_at = float(int(time.time()))
        late = (await desk.receive(_event(password_locked("evt-late")), issued_at))[0]
        in_time = (await desk.receive(_event(password_locked("evt-in-time")), issued_at))[0]
        async with sessions() as session:
            with pytest.raises(Conflict) as refused:
                await desk.redeem(session, "C1002", late.ticket, issued_at + 60)
            assert refused.value.code == "ticket_expired"
        async with sessions() as session:
            grant = await desk.redeem(session, "C1002", in_time.ticket, issued_at + 59.9)
            await session.commit()
        assert grant.intent == "password"
    finally:
        await engine.dispose()


def _event(body: dict[str, Any]) -> Any:
    return RedirectRequest.model_validate(body).root


async def until_waiting_on_a_lock(engine: AsyncEngine, sent: asyncio.Event) -> None:
    """Return once the racer's UPDATE has been sent and is held up by the first
    transaction's lock: on PostgreSQL the server says its backend waits on a lock;
    on SQLite the first transaction holds the database's write lock, which the
    UPDATE needs before it can finish."""
    async with asyncio.timeout(10):
        await sent.wait()
        if engine.dialect.name == "postgresql":
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE redirects%'"
            )
            while True:
                async with engine.connect() as probe:
                    if await probe.scalar(waiting):
                        return
                await asyncio.sleep(0.02)
    database = engine.url.database
    assert database is not None
    probe = sqlite3.connect(database, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            probe.execute("BEGIN IMMEDIATE")
    finally:
        probe.close()


async def test_two_taps_racing_with_one_ticket_open_one_call(
    api: Api, server: RunningServer
) -> None:
    ticket = (await redirect(api, transfer_over_limit())).body["ticket"]
    customer = await api.customer("C1001")
    replies = await asyncio.gather(
        *(customer.post("/api/v1/calls", {"ticket": ticket}) for _ in range(2))
    )
    # The loser either finds the winner's open call (200) or the ticket spent (409).
    statuses = sorted(r.status for r in replies)
    assert statuses in ([200, 201], [201, 409]), replies
    call_ids = {r.body["call_id"] for r in replies if r.status in (200, 201)}
    assert len(call_ids) == 1
    assert await count(server, Call, Call.ticket == ticket) == 1
    assert await count(server, Redirect, Redirect.used_at.is_not(None)) == 1


async def test_two_redemptions_in_flight_at_once_only_one_wins(database_url: str) -> None:
    """The conditional update itself, with both transactions open at the same time."""
    settings = Settings(dev_mode=True, database_url=database_url, redirect_secret=SECRET)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    desk = TicketDesk(settings, sessions)
    try:
        now = time.time()
        event = RedirectRequest.model_validate(transfer_over_limit()).root
        receipt, created = await desk.receive(event, now)
        assert created
        async with sessions() as first, sessions() as second:
            grant = await desk.redeem(first, "C1001", receipt.ticket, now)
            assert grant.priority.value == "urgent"
            # The second reads the ticket as unused, then waits on the first's lock.
            update_sent = asyncio.Event()

            def on_statement(*args: Any) -> None:
                if args[2].lstrip().upper().startswith("UPDATE REDIRECTS"):
                    update_sent.set()

            sa_event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
            racer = asyncio.create_task(desk.redeem(second, "C1001", receipt.ticket, now))
            await until_waiting_on_a_lock(engine, update_sent)
            assert not racer.done()
            await first.commit()
            with pytest.raises(Conflict) as lost:
                await racer
            assert lost.value.code == "ticket_used"
        async with sessions() as session:
            used = await session.scalar(
                select(Redirect.used_at).where(Redirect.ticket == receipt.ticket)
            )
            reasons = [
                e.data["reason"]
                for e in await session.scalars(
                    select(AuditEntry).where(AuditEntry.kind == "ticket.refused")
                )
            ]
        assert used is not None and used.tzinfo is not None
        assert abs(used.astimezone(UTC).timestamp() - now) < 1
        assert reasons == ["used"]
    finally:
        await engine.dispose()


async def test_the_same_event_racing_itself_is_stored_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deliveries of one event that both read "not seen yet": the insert decides."""
    settings = Settings(dev_mode=True, database_url=database_url, redirect_secret=SECRET)
    engine = make_engine(database_url)
    desk = TicketDesk(settings, make_sessionmaker(engine))
    try:
        event = RedirectRequest.model_validate(transfer_over_limit()).root
        first, created = await desk.receive(event, time.time())
        assert created
        # The second delivery's first read happened before the first one committed.
        real = desk._by_event
        reads: list[str] = []

        async def late_read(session: Any, event_id: str) -> Any:
            reads.append(event_id)
            return None if len(reads) == 1 else await real(session, event_id)

        monkeypatch.setattr(desk, "_by_event", late_read)
        second, created = await desk.receive(event, time.time())
        assert not created and second == first and len(reads) == 2

        other = RedirectRequest.model_validate(transfer_over_limit(customer_id="C1003")).root
        reads.clear()
        with pytest.raises(Conflict) as conflict:
            await desk.receive(other, time.time())
        assert conflict.value.code == "event_conflict"
        async with desk.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Redirect)) == 1
            received = await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.kind == "redirect.received")
            )
            assert received == 1
    finally:
        await engine.dispose()


async def test_identical_deliveries_at_once_get_one_ticket(api: Api, server: RunningServer) -> None:
    replies = await asyncio.gather(*(redirect(api, password_locked()) for _ in range(3)))
    assert sorted(r.status for r in replies) == [200, 200, 201], replies
    assert len({r.body["ticket"] for r in replies}) == 1
    assert await count(server, Redirect) == 1
