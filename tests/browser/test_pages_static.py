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
        running_server(database_url=database_url, dev_mode=False, jwt_secret="s" * 40) as prod,
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


# Ageing-friendly figures of every visible text and control on the app page.
_MEASURE = """() => {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const bg = getComputedStyle(e).backgroundColor;
      const alpha = bg.match(/[\\d.]+/g);
      if (alpha && (alpha.length < 4 || Number(alpha[3]) > 0.5)) return bg;
    }
    return 'rgb(255, 255, 255)';
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
  };
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || !visible(el) || el.closest('option')) continue;
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize);
    const lineHeight = style.lineHeight === 'normal' ? size * 1.2 : parseFloat(style.lineHeight);
    const a = lum(style.color), b = lum(background(el));
    texts.push({ text: node.textContent.trim().slice(0, 30), size, ratio: lineHeight / size,
                 contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) });
  }
  const targets = [...document.querySelectorAll('button, select, a[href], input')]
    .filter(visible).map((el) => {
      const r = el.getBoundingClientRect();
      return { id: el.id || el.dataset.testid, width: r.width, height: r.height };
    });
  return { texts, targets };
}"""


def _check_ageing_rules(measured: dict[str, list[dict[str, object]]], where: str) -> None:
    texts, targets = measured["texts"], measured["targets"]
    assert texts and targets, f"{where}: nothing measured"
    for t in texts:
        assert float(t["size"]) >= 18, f"{where}: text under 18 px: {t}"  # type: ignore[arg-type]
        assert round(float(t["ratio"]), 2) >= 1.3, f"{where}: line height under 1.3: {t}"  # type: ignore[arg-type]
        assert float(t["contrast"]) >= 4.5, f"{where}: contrast under 4.5:1: {t}"  # type: ignore[arg-type]
    for target in targets:
        assert float(target["width"]) >= 60 and float(target["height"]) >= 60, (  # type: ignore[arg-type]
            f"{where}: touch target under 60x60 px: {target}"
        )


async def test_app_page_follows_the_ageing_rules_and_axe(
    browser: Browser, server: RunningServer
) -> None:
    # A phone-sized window, as the senior edition runs.
    context = await new_context(
        browser, server.base_url, viewport={"width": 412, "height": 860}, device_scale_factor=1
    )
    page = await open_page(context, "/app/")
    await expect(tid(page, "customer-select")).to_be_visible()
    _check_ageing_rules(await page.evaluate(_MEASURE), "customer picker")
    await assert_accessible(page, "app: customer picker")
    page = await app_as(context, "C1003")
    _check_ageing_rules(await page.evaluate(_MEASURE), "home")
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

    board = await open_page(context, "/supervisor/")
    await assert_accessible(board, "supervisor: login")
    await tid(board, "login-username").fill("chen.li")
    await tid(board, "login-password").fill("branch-demo")
    await tid(board, "login-submit").click()
    await expect(board.locator("#login-error")).to_contain_text("not a supervisor account")
    no_page_errors(board)
    await context.close()
