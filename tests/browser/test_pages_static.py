"""The pages themselves: served with a strict CSP, accessible, and the app page within
the MIIT ageing-friendly rules; the desk's plain-words login errors; the amount in
Chinese capital numerals. Real Chromium, real server."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.api.harness import Api, RunningServer, running_server
from tests.browser.conftest import new_context
from tests.browser.pages import (
    app_as,
    assert_accessible,
    check_ageing_rules,
    desk_login,
    no_page_errors,
    open_page,
    snap,
    tid,
)

AMOUNTS = {
    "50000.00": "伍万元整",
    "20000.00": "贰万元整",
    "0.00": "零元整",
    "0.05": "伍分",
    "0.50": "伍角",
    "10": "壹拾元整",
    "105": "壹佰零伍元整",
    "100005.30": "壹拾万零伍元叁角",
    "1000.05": "壹仟元零伍分",
    "10010000": "壹仟零壹万元整",
    "10000001": "壹仟万零壹元整",
    "123456789.12": "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元壹角贰分",
    "300000000": "叁亿元整",
    "1,234.5": "壹仟贰佰叁拾肆元伍角",
}


@pytest.mark.parametrize("path", ["/desk/", "/supervisor/", "/app/", "/"])
async def test_pages_are_served_with_a_strict_csp(api: Api, path: str) -> None:
    async with api.session.get(api.base_url + path) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        html = await response.text()
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "style-src 'self'" in policy
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html


async def test_unknown_files_are_not_found(api: Api) -> None:
    for path in ("/desk/../server/settings.py", "/desk/nothing.js", "/common/%2e%2e/app.py"):
        async with api.session.get(api.base_url + path) as response:
            assert response.status == 404, path
            assert response.content_type == "application/problem+json"
    async with api.session.get(api.base_url + "/desk", allow_redirects=False) as response:
        assert response.status == 308 and response.headers["Location"] == "/desk/"


async def test_no_home_page_nor_customer_picker_outside_dev_mode(database_url: str) -> None:
    async with (
        running_server(
            database_url=database_url, dev_mode=False, jwt_secret="s" * 40, recording_enabled=False
        ) as prod,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(prod.base_url + "/") as response:
            assert response.status == 404
        async with session.get(prod.base_url + "/web/config.json") as response:
            assert (await response.json()) == {"dev_mode": False}
        async with session.get(prod.base_url + "/app/") as response:
            assert response.status == 200


async def test_amount_in_chinese_words(browser: Browser, server: RunningServer) -> None:
    context = await new_context(browser, server.base_url)
    page = await open_page(context, "/app/")
    got = await page.evaluate(
        """async (amounts) => {
            const { amountInWords } = await import('/app/amount.js');
            return Object.fromEntries(amounts.map((a) => [a, amountInWords(a)]));
        }""",
        list(AMOUNTS),
    )
    assert got == AMOUNTS
    refused = await page.evaluate(
        """async () => {
            const { amountInWords } = await import('/app/amount.js');
            return ['-1', 'abc', '1.234', '12345678901234567'].map((a) => {
                try { amountInWords(a); return 'accepted'; } catch (e) { return e.name; }
            });
        }"""
    )
    assert refused == ["RangeError"] * 4
    await context.close()


async def test_app_page_follows_the_ageing_rules_and_axe(
    browser: Browser, server: RunningServer
) -> None:
    # A phone-sized window, as the senior edition runs.
    context = await new_context(
        browser, server.base_url, viewport={"width": 412, "height": 860}, device_scale_factor=1
    )
    page = await open_page(context, "/app/")
    await expect(tid(page, "customer-select")).to_be_visible()
    await check_ageing_rules(page, "customer picker")
    await assert_accessible(page, "app: customer picker")
    page = await app_as(context, "C1003")
    await check_ageing_rules(page, "home")
    await assert_accessible(page, "app: home")
    await snap(page, "app-1-home")
    no_page_errors(page)
    await context.close()


async def test_desk_and_supervisor_login_pages(browser: Browser, server: RunningServer) -> None:
    context = await new_context(browser, server.base_url)
    desk = await open_page(context, "/desk/")
    await assert_accessible(desk, "desk: login")
    await snap(desk, "desk-1-login")
    await tid(desk, "login-username").fill("chen.li")
    await tid(desk, "login-password").fill("wrong password")
    await tid(desk, "login-submit").click()
    await expect(desk.locator("#login-error")).to_contain_text("Wrong username or password")
    await expect(desk.locator("#login-error")).to_contain_text("用户名或密码不对")
    # A supervisor account is sent to the wallboard, not given a desk.
    await tid(desk, "login-username").fill("sun.hua")
    await tid(desk, "login-password").fill("branch-demo")
    await tid(desk, "login-submit").click()
    await expect(desk.locator("#login-error")).to_contain_text("supervisor wallboard")

    # The socket's state is always on screen: a drop reconnects by itself, and a newer
    # desk for the same specialist replaces this one (4409), which then stays down.
    first = await desk_login(context, "chen.li")
    await first.evaluate(
        """() => {
            const element = document.querySelector('[data-testid=socket-state]');
            window.seenStates = [];
            new MutationObserver(() => window.seenStates.push(element.dataset.state))
                .observe(element, {attributes: true});
        }"""
    )
    await first.evaluate("() => window.cloudbranchDesk.state.channel.drop()")
    await expect(tid(first, "socket-state")).to_have_attribute("data-state", "connected")
    states = await first.evaluate("() => window.seenStates")
    assert "reconnecting" in states, states
    second = await desk_login(context, "chen.li")
    await expect(tid(first, "socket-state")).to_have_attribute("data-state", "replaced")
    await expect(tid(first, "socket-state")).to_contain_text("4409")
    await expect(tid(second, "socket-state")).to_have_attribute("data-state", "connected")

    board = await open_page(context, "/supervisor/")
    await assert_accessible(board, "supervisor: login")
    await tid(board, "login-username").fill("chen.li")
    await tid(board, "login-password").fill("branch-demo")
    await tid(board, "login-submit").click()
    await expect(board.locator("#login-error")).to_contain_text("not a supervisor account")
    no_page_errors(board)
    await context.close()
