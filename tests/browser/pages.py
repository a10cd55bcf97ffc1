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


async def app_as(context: BrowserContext, customer_id: str) -> Page:
    app = await open_page(context, "/app/")
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
