"""Driving the three pages through their data-testid hooks (the pages' contract)."""

from __future__ import annotations

import asyncio
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import screenshot_path


def tid(page: Page, name: str) -> Any:
    return page.get_by_test_id(name)


async def open_page(context: BrowserContext, path: str) -> Page:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    # A refused API call is part of some stories (a wrong password); a missing file never is.
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status == 404 and "/api/" not in r.url
            else None
        ),
    )
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(path)
    return page


async def desk_login(context: BrowserContext, username: str) -> Page:
    desk = await open_page(context, "/desk/")
    await tid(desk, "login-username").fill(username)
    await tid(desk, "login-password").fill("branch-demo")
    await tid(desk, "login-submit").click()
    await expect(tid(desk, "socket-state")).to_have_attribute("data-state", "connected")
    return desk


async def go_available(desk: Page) -> None:
    await tid(desk, "presence-toggle").click()
    await expect(tid(desk, "presence-toggle")).to_have_attribute("aria-pressed", "true")


async def app_as(context: BrowserContext, customer_id: str, path: str = "/app/") -> Page:
    app = await open_page(context, path)
    await tid(app, "customer-select").select_option(customer_id)
    await app.locator("#customer-go").click()
    await expect(tid(app, "call-button")).to_be_visible()
    return app


async def frames_decoded(page: Page, handle: str) -> int:
    return int(await page.evaluate(f"() => window.{handle}.framesDecoded()"))


async def wait_frames(page: Page, handle: str, more_than: int = 0, timeout: float = 30) -> int:
    """Poll getStats until the page has decoded more than ``more_than`` video frames."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    frames = 0
    while loop.time() < deadline:
        frames = await frames_decoded(page, handle)
        if frames > more_than:
            return frames
        await asyncio.sleep(0.25)
    raise AssertionError(f"{handle}: {frames} frames decoded, wanted more than {more_than}")


async def accept_offer(desk: Page) -> None:
    card = tid(desk, "offer-card")
    await expect(card).to_be_visible()
    await tid(card, "offer-accept").click()
    await expect(tid(desk, "call-state")).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )


async def assert_accessible(page: Page, name: str) -> None:
    """axe-core on the page as it is: no serious or critical violations."""
    results = await Axe().run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: accessibility violations {bad}"


async def snap(page: Page, name: str, full_page: bool = True) -> None:
    await page.screenshot(path=screenshot_path(name), full_page=full_page)


def no_page_errors(page: Page) -> None:
    errors = page.errors  # type: ignore[attr-defined]
    assert not errors, f"page errors on {page.url}: {errors}"


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


async def check_ageing_rules(page: Page, where: str) -> None:
    """MIIT ageing-friendly rules on what is on screen: text, line height, contrast, targets."""
    measured = await page.evaluate(_MEASURE)
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
