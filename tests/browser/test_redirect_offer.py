"""A scenario redirect through the pages: the app opened by the deep link's ticket, and
the desk's offer card showing the redirect's context (transfer over limit, amount,
payee) with the lease countdown."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.api.harness import Api, RunningServer
from tests.api.test_redirects import SECRET, TRANSFER, redirect, transfer_over_limit
from tests.browser.conftest import new_context
from tests.browser.pages import (
    app_as,
    assert_accessible,
    desk_login,
    go_available,
    no_page_errors,
    tid,
)


@pytest.fixture
def server_settings() -> dict[str, Any]:
    return {"redirect_secret": SECRET}


async def test_redirected_call_shows_its_context_on_the_offer_card(
    browser: Browser, server: RunningServer, api: Api
) -> None:
    issued = await redirect(api, transfer_over_limit())
    assert issued.status == 201, issued
    ticket = issued.body["ticket"]
    desk_context = await new_context(browser, server.base_url)
    app_context = await new_context(browser, server.base_url)
    desk = await desk_login(desk_context, "chen.li")
    await go_available(desk)
    # The host app opens the page with the deep link's ticket.
    app = await app_as(app_context, "C1001", f"/app/?ticket={ticket}")
    assert "ticket=" in app.url
    await tid(app, "call-button").click()

    card = tid(desk, "offer-card")
    await expect(card).to_contain_text("转账超限")
    await expect(card).to_contain_text("50000.00")
    await expect(card).to_contain_text(TRANSFER["payee_name"])
    countdown = card.locator(".offer-countdown")
    await expect(countdown).to_contain_text("s left")
    first = await countdown.text_content()
    await expect(countdown).not_to_have_text(first or "")  # it counts down
    await assert_accessible(desk, "desk: offer card")
    offer_id = await card.get_attribute("data-offer-id")
    await tid(card, "offer-decline").click()
    await expect(desk.locator(f'[data-offer-id="{offer_id}"]')).to_have_count(0)
    # The call goes back to the queue (and may be offered again); the customer hangs
    # up, and any offer still out is withdrawn from the desk.
    await tid(app, "hang-up").click()
    await expect(tid(app, "call-ended")).to_be_visible()
    await expect(card).to_have_count(0)
    no_page_errors(desk)
    no_page_errors(app)
    await desk_context.close()
    await app_context.close()
