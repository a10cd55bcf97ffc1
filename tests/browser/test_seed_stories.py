"""Both seed stories through the pages only: the app page and the desk page in two
browser contexts of a real Chromium (fake camera and microphone), the supervisor
wallboard in a third. Money and warnings are checked in the database afterwards.

Grandma Li (C1001): a "safe account" transfer; the desk's pop-up needs every answer
to proceed, her app shows the warning, the desk blocks it, her balance is unchanged.
Grandpa Wu (C1002): the supervisor sees his call queued, the specialist busy and the
timeline; his socket and peer connection drop mid-call and the call resumes with
video at both ends; his transfer to his son is confirmed on the app page and executes.
His story runs with the video analysis on, as in production: Chromium's camera plays
a live face (tests/browser/fake_camera.py), the desk shows the video as live, and no
signal is raised over the whole call, the drop and resume included.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from server.appkeys import INTEGRITY
from server.db.banking import AuditEntry, Payee, Transfer, WarningShown
from tests.api.harness import RunningServer
from tests.api.test_operations import pin_morning
from tests.browser.conftest import new_context
from tests.browser.pages import (
    accept_offer,
    app_as,
    assert_accessible,
    check_ageing_rules,
    desk_login,
    frames_decoded,
    go_available,
    no_page_errors,
    open_page,
    snap,
    tid,
    wait_frames,
)
from tests.e2e.stories import balances, db_rows

pytestmark = pytest.mark.media


async def _answers_are_required_then_block(desk: Page) -> None:
    popup = tid(desk, "risk-popup")
    await expect(popup).to_be_visible()
    answers = await tid(popup, "risk-answer").all()
    assert answers, "the pop-up asks scripted questions"
    # Escape does not dismiss it, and proceeding needs every answer.
    await desk.keyboard.press("Escape")
    await expect(popup).to_be_visible()
    await expect(tid(popup, "risk-proceed")).to_be_disabled()
    for field in answers[:-1]:
        await field.fill("客户说是“客服”来电让她转的")
    await expect(tid(popup, "risk-proceed")).to_be_disabled()
    await answers[-1].fill("不认识收款人")
    await expect(tid(popup, "risk-proceed")).to_be_enabled()
    await answers[-1].fill("")
    await expect(tid(popup, "risk-proceed")).to_be_disabled()
    await snap(desk, "desk-3-risk-popup", full_page=False)
    await assert_accessible(desk, "desk: risk pop-up")
    await tid(popup, "risk-block").click()


async def _warnings_until(app: Page, op_id: str | None, timeout: float = 20) -> None:
    """Acknowledge earlier warnings (as the customer would) until ``op_id``'s is on screen."""
    warning = tid(app, "risk-warning")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await warning.is_visible():
            if await warning.get_attribute("data-operation-id") == op_id:
                return
            await tid(app, "risk-warning-ack").click()
        await asyncio.sleep(0.2)
    raise AssertionError(f"no warning for {op_id} on the app page")


async def _transfer(
    desk: Page, amount: str, account: str, name: str, bank: str, statement: str
) -> None:
    await tid(desk, "op-kind").select_option("transfer")
    await tid(desk, "op-amount").fill(amount)
    await tid(desk, "op-currency").fill("CNY")
    await tid(desk, "op-payee-account").fill(account)
    await tid(desk, "op-payee-name").fill(name)
    await tid(desk, "op-payee-bank").fill(bank)
    await tid(desk, "op-statement").fill(statement)
    await tid(desk, "op-submit").click()


async def _referral_and_blocked_list(desk: Page, shot: str) -> None:
    popup = tid(desk, "risk-popup")
    await expect(popup.locator("#risk-referral")).to_contain_text("96110")
    await expect(popup.locator("#risk-referral")).to_contain_text("110")
    await popup.locator("#risk-blocklist").click()
    await expect(popup.locator("#risk-blocklist-result")).to_have_attribute("data-done", "true")
    await snap(desk, shot, full_page=False)
    await popup.locator("#risk-done").click()
    await expect(popup).to_be_hidden()


async def test_grandma_li_safe_account_transfer_is_blocked(
    browser: Browser, server: RunningServer
) -> None:
    pin_morning(server)
    desk_context = await new_context(browser, server.base_url)
    app_context = await new_context(
        browser, server.base_url, viewport={"width": 412, "height": 860}
    )
    desk = await desk_login(desk_context, "chen.li")
    await go_available(desk)
    app = await app_as(app_context, "C1001")
    before = await balances(server, "C1001")

    await tid(app, "call-button").click()
    await expect(tid(desk, "offer-card")).to_contain_text("78")
    await snap(desk, "desk-2-offer")
    await accept_offer(desk)
    await expect(tid(app, "queue-message")).to_contain_text("specialist")
    assert await wait_frames(desk, "cloudbranchDesk") > 0
    assert await wait_frames(app, "cloudbranchApp") > 0

    # She first asks for 15,000 "for furniture" to an account she has never paid:
    # the engine asks for a review, and the pop-up's questions must all be answered
    # before the specialist may proceed. What she says makes the specialist block it.
    await _transfer(desk, "15000.00", "6217000011112222", "王强", "CCB", "买家具")
    await expect(tid(desk, "op-state")).to_have_attribute("data-state", "awaiting_review")
    warning = tid(app, "risk-warning")
    await expect(warning).to_be_visible()
    await tid(app, "risk-warning-ack").click()
    await expect(warning).to_be_hidden()
    await _answers_are_required_then_block(desk)
    await _referral_and_blocked_list(desk, "desk-4a-blocked")
    await expect(tid(desk, "op-state")).to_have_attribute("data-state", "blocked")

    # Then the "safe account" transfer itself.
    await _transfer(
        desk,
        "50000.00",
        "6217000099998888",
        "李秀英",
        "CCB",
        "客服说微信百万保障计划要关闭，要把钱转到我自己的安全账户",
    )
    popup = tid(desk, "risk-popup")
    await expect(popup).to_be_visible()
    codes = {await r.get_attribute("data-code") for r in await tid(popup, "risk-reason").all()}
    assert {"safe_account_pattern", "typology_protection_plan"} <= codes
    await expect(tid(desk, "op-state")).to_have_attribute(
        "data-state", re.compile("awaiting_review|blocked")
    )
    decision = await tid(desk, "op-state").get_attribute("data-state")
    op_id = await tid(desk, "op-state").get_attribute("data-operation-id")
    # The app shows the warning full screen; its acknowledgement is recorded as shown.
    await _warnings_until(app, op_id)
    await expect(warning).to_contain_text("安全账户")
    await snap(app, "app-3-risk-warning", full_page=False)
    await check_ageing_rules(app, "app: risk warning")
    await assert_accessible(app, "app: risk warning")
    await tid(app, "risk-warning-ack").click()
    await expect(warning).to_be_hidden()
    if decision == "awaiting_review":
        await _answers_are_required_then_block(desk)
    await _referral_and_blocked_list(desk, "desk-4-blocked")
    await expect(tid(desk, "op-state")).to_have_attribute("data-state", "blocked")

    assert await balances(server, "C1001") == before, "no money moved"
    assert not await db_rows(server, select(Transfer).where(Transfer.operation_id == op_id))
    shown = await db_rows(
        server, select(WarningShown.shown_at).where(WarningShown.operation_id == op_id)
    )
    assert shown and any(row[0] is not None for row in shown), "acknowledged warning recorded"

    await tid(desk, "call-end").click()
    await tid(desk, "wrapup-code").select_option("fraud_prevented")
    await tid(desk, "wrapup-submit").click()
    await expect(tid(desk, "presence-toggle")).to_have_attribute("aria-pressed", "true")
    await expect(tid(app, "call-ended")).to_be_visible()
    await snap(app, "app-5-call-ended")
    no_page_errors(desk)
    no_page_errors(app)
    await desk_context.close()
    await app_context.close()


async def _video_is_live(desk: Page, server: RunningServer, call_id: str) -> None:
    """The desk shows the customer's video as live, and the analysis has raised no
    signal in this call so far (``signals`` keeps ended episodes too)."""
    await expect(tid(desk, "integrity-status")).to_have_attribute("data-status", "ok")
    view = server.app[INTEGRITY].view(call_id)
    assert view["status"] == "ok" and view["signals"] == [], view


# With the analysis on, a worker process decodes the app's video beside Chromium and
# the server: bound 240 s (about 60 s on a quiet machine).
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("default_integrity_enabled", [True], ids=["integrity_on"])
async def test_grandpa_wu_transfer_with_drop_and_resume_and_the_wallboard(
    browser: Browser, server: RunningServer
) -> None:
    son = (
        await db_rows(
            server,
            select(Payee.account_no, Payee.name, Payee.bank).where(
                Payee.customer_id == "C1002", Payee.relation == "family"
            ),
        )
    )[0]
    pin_morning(server)
    desk_context = await new_context(browser, server.base_url)
    app_context = await new_context(
        browser, server.base_url, viewport={"width": 412, "height": 860}
    )
    board_context = await new_context(browser, server.base_url)

    board = await open_page(board_context, "/supervisor/")
    await tid(board, "login-username").fill("sun.hua")
    await tid(board, "login-password").fill("branch-demo")
    await tid(board, "login-submit").click()
    await expect(tid(board, "service-level")).to_contain_text("60")

    desk = await desk_login(desk_context, "zhou.min")  # away until the call is queued
    app = await app_as(app_context, "C1002")
    before = await balances(server, "C1002")
    await tid(app, "call-button").click()
    await expect(tid(app, "queue-message")).not_to_be_empty()
    await snap(app, "app-2-queued")
    queue = tid(board, "queue-table")
    await expect(queue.locator('tr[data-dialect="wuu"] td[data-waiting="1"]')).to_be_visible()
    await snap(board, "supervisor-1-queued")

    await go_available(desk)
    await accept_offer(desk)
    staff = tid(board, "specialists-table")
    await expect(staff.locator('tr[data-username="zhou.min"]')).to_have_attribute(
        "data-state", "busy"
    )
    await expect(staff.locator('tr[data-username="sun.hua"]')).to_have_count(0)
    await assert_accessible(board, "supervisor: live")
    desk_frames = await wait_frames(desk, "cloudbranchDesk")
    app_frames = await wait_frames(app, "cloudbranchApp")
    call_id = await desk.evaluate("() => window.cloudbranchDesk.state.call.call_id")
    await _video_is_live(desk, server, call_id)
    await snap(desk, "desk-5-in-call")
    await assert_accessible(desk, "desk: in call")
    await assert_accessible(app, "app: in call")

    links = "(h) => window[h].state.links"
    desk_links = await desk.evaluate(links, "cloudbranchDesk")
    app_links = await app.evaluate(links, "cloudbranchApp")
    # A lift: the app loses its socket and its peer connection at once.
    await app.evaluate("() => window.cloudbranchApp.dropConnection()")
    assert await frames_decoded(app, "cloudbranchApp") == 0, "the old connection is gone"
    # New peer connections at both ends, video decoded again on both pages.
    assert await wait_frames(app, "cloudbranchApp", timeout=45) > 0
    assert await app.evaluate(links, "cloudbranchApp") > app_links
    assert await desk.evaluate(links, "cloudbranchDesk") > desk_links, "desk restarted media"
    await expect(tid(desk, "call-state")).to_have_attribute("data-state", "connected")
    resumed = await wait_frames(desk, "cloudbranchDesk", more_than=0, timeout=45)
    assert resumed > 0 and desk_frames > 0 and app_frames > 0
    await _video_is_live(desk, server, call_id)

    await tid(desk, "op-kind").select_option("transfer")
    await tid(desk, "op-amount").fill("20000.00")
    await tid(desk, "op-payee-account").fill(son[0])
    await tid(desk, "op-payee-name").fill(son[1])
    await tid(desk, "op-payee-bank").fill(son[2])
    await tid(desk, "op-statement").fill("给儿子的生活费，每个月都转")
    await tid(desk, "op-submit").click()
    await expect(tid(desk, "op-state")).to_have_attribute("data-state", "awaiting_confirmation")

    dialog = tid(app, "confirm-dialog")
    await expect(dialog).to_be_visible()
    summary = tid(app, "confirm-summary")
    await expect(summary).to_contain_text("20,000.00")
    await expect(summary).to_contain_text("贰万元整")
    await expect(summary).to_contain_text(son[1])
    await snap(app, "app-4-confirm", full_page=False)
    await check_ageing_rules(app, "app: confirmation")
    await assert_accessible(app, "app: confirmation")
    await tid(app, "confirm-yes").click()
    await expect(dialog).to_be_hidden()
    await expect(tid(desk, "op-state")).to_have_attribute("data-state", "executed")
    after = await balances(server, "C1002")
    moved = {k: before[k] - after[k] for k in before if before[k] != after[k]}
    assert list(moved.values()) == [Decimal("20000.00")], moved
    await _video_is_live(desk, server, call_id)
    changes = await db_rows(
        server, select(AuditEntry.data).where(AuditEntry.kind == "integrity.changed")
    )
    statuses = [row[0]["status"] for row in changes if row[0].get("call_id") == call_id]
    # "unknown" while his leg was gone (nothing to analyse), never "suspect".
    assert statuses[0] == "ok" and statuses[-1] == "ok" and "suspect" not in statuses, statuses

    await tid(desk, "call-end").click()
    await expect(tid(desk, "wrapup-submit")).to_be_visible()
    await snap(desk, "desk-6-wrap-up")
    await tid(desk, "wrapup-submit").click()
    await expect(tid(app, "call-ended")).to_be_visible()

    row = board.locator("#calls-table tbody tr").first
    await expect(row).to_have_attribute("data-state", "ended")
    await row.locator("button").click()
    timeline = tid(board, "call-timeline")
    for kind in ("queued", "accepted", "party_dropped", "media_reconnected", "wrapped_up"):
        await expect(timeline.locator(f'li[data-kind="{kind}"]').first).to_be_visible()
    await tid(board, "audit-verify").click()
    await expect(tid(board, "audit-result")).to_have_attribute("data-ok", "true")
    await snap(board, "supervisor-2-timeline")
    for page in (desk, app, board):
        no_page_errors(page)
    for context in (desk_context, app_context, board_context):
        await context.close()
