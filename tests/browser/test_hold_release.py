"""A hold from the desk's pop-up, released with a note; the customer then refuses on
the app page, and nothing executes."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, Page, expect

from tests.api.harness import RunningServer
from tests.api.test_operations import pin_morning
from tests.browser.conftest import new_context
from tests.browser.pages import accept_offer, app_as, desk_login, go_available, no_page_errors, tid
from tests.e2e.stories import balances

pytestmark = pytest.mark.media


async def _acknowledge_warnings(app: Page, quiet_s: float = 1.5, timeout: float = 20) -> int:
    """Press the warning's button for each warning that comes, until none for quiet_s."""
    warning = tid(app, "risk-warning")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = 0
    quiet_since = loop.time()
    while loop.time() < deadline and loop.time() - quiet_since < quiet_s:
        if await warning.is_visible():
            await tid(app, "risk-warning-ack").click()
            seen += 1
            quiet_since = loop.time()
        await asyncio.sleep(0.1)
    return seen


async def test_hold_then_release_then_the_customer_refuses(
    browser: Browser, server: RunningServer
) -> None:
    pin_morning(server)
    desk_context = await new_context(browser, server.base_url)
    app_context = await new_context(browser, server.base_url)
    desk = await desk_login(desk_context, "chen.li")
    await go_available(desk)
    app = await app_as(app_context, "C1001")
    before = await balances(server, "C1001")
    await tid(app, "call-button").click()
    await accept_offer(desk)

    await tid(desk, "op-kind").select_option("transfer")
    await tid(desk, "op-amount").fill("15000.00")
    await tid(desk, "op-payee-account").fill("6217000011112222")
    await tid(desk, "op-payee-name").fill("王强")
    await tid(desk, "op-payee-bank").fill("CCB")
    await tid(desk, "op-statement").fill("买家具")
    await tid(desk, "op-submit").click()
    popup = tid(desk, "risk-popup")
    await expect(popup).to_be_visible()
    await tid(popup, "risk-hold").click()
    await expect(tid(desk, "op-state")).to_have_attribute("data-state", "held")
    held = popup.locator("#risk-held")
    await expect(held).to_be_visible()
    await expect(held).to_contain_text("Cooling off until")
    # Releasing needs a note.
    await popup.locator("#risk-release").click()
    await expect(popup.locator("#risk-error")).to_contain_text("note")
    await popup.locator("#risk-release-note").fill("客户与儿子通话确认，确实是买家具")
    await popup.locator("#risk-release").click()
    await expect(popup).to_be_hidden()
    await expect(tid(desk, "op-state")).to_have_attribute("data-state", "awaiting_confirmation")

    assert await _acknowledge_warnings(app) >= 1, "the review and the hold warn the customer"
    await expect(tid(app, "confirm-dialog")).to_be_visible()
    await expect(tid(app, "confirm-summary")).to_contain_text("壹万伍仟元整")
    await tid(app, "confirm-no").click()
    await expect(tid(app, "confirm-dialog")).to_be_hidden()
    await expect(tid(desk, "op-state")).to_have_attribute("data-state", "rejected")
    assert await balances(server, "C1001") == before
    no_page_errors(desk)
    no_page_errors(app)
    await desk_context.close()
    await app_context.close()
