"""Browser fixtures: a real server on loopback and Debian's Chromium through Playwright.

Playwright's own browser download is not used: the tests launch ``/usr/bin/chromium``
(installed by ``make test`` through ``BROWSER_PACKAGES``) with a fake camera and
microphone. The camera plays a clip of a live face written once per test session
(tests/browser/fake_camera.py), so the media node's video analysis sees what it
sees of a real customer. A missing browser fails the tests; it never skips them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from tests.api.harness import clone_sqlite
from tests.browser.fake_camera import write_clip

CHROMIUM = os.environ.get("CLOUDBRANCH_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox cannot start
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous bounds for a loaded machine; every wait is on an event or a state, not a sleep.
expect.set_options(timeout=15_000)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture
def default_media_mode() -> str:
    """The pages' media goes through the server's media node, as in production."""
    return "relay"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    template: Path = request.getfixturevalue("sqlite_template")
    return clone_sqlite(template, tmp_path / "cb.db")


@pytest.fixture
def server_settings() -> dict[str, object]:
    return {"redirect_secret": "test-redirect-secret"}


def _require_chromium() -> None:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        raise AssertionError(
            f"no Chromium at {CHROMIUM} (on PATH: {found}); `make test` installs Debian's chromium"
        )


@pytest.fixture(scope="session")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake camera's clip: a live face, written once per test session."""
    return write_clip(tmp_path_factory.mktemp("camera") / "face.y4m")


@pytest.fixture
async def browser(camera_clip: Path) -> AsyncIterator[Browser]:
    _require_chromium()
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera_clip}"]
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=args, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_context(browser: Browser, base_url: str, **options: object) -> BrowserContext:
    context = await browser.new_context(base_url=base_url, **options)  # type: ignore[arg-type]
    context.set_default_timeout(20_000)
    return context


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
