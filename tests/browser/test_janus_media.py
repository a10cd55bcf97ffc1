"""The desk and app pages in real Chromium with their media through Janus
(``CLOUDBRANCH_MEDIA_BACKEND=janus``): the pages' contract is unchanged, video is
decoded at both ends, and the call is recorded by the node."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from server.appkeys import COMPONENTS
from server.media.janus.node import JanusMediaNode
from tests.api.harness import RunningServer
from tests.browser.conftest import new_context
from tests.browser.pages import accept_offer, app_as, desk_login, go_available, tid, wait_frames


@pytest.fixture
def server_settings() -> dict[str, object]:
    return {"redirect_secret": "test-redirect-secret", "media_backend": "janus"}


@pytest.mark.slow  # Chromium and a private Janus; bound: about 30 s
async def test_chromium_pages_have_video_both_ways_through_janus(
    browser: Browser, server: RunningServer
) -> None:
    host = server.app[COMPONENTS].media_host
    assert host is not None and isinstance(host.node, JanusMediaNode)
    desk_context = await new_context(browser, server.base_url)
    app_context = await new_context(
        browser, server.base_url, viewport={"width": 412, "height": 860}
    )
    desk = await desk_login(desk_context, "chen.li")
    await go_available(desk)
    app = await app_as(app_context, "C1001")
    await tid(app, "call-button").click()
    await expect(tid(desk, "offer-card")).to_be_visible()
    await accept_offer(desk)
    assert await wait_frames(desk, "cloudbranchDesk", more_than=10) > 10
    assert await wait_frames(app, "cloudbranchApp", more_than=10) > 10
    stats = host.node.stats()
    # Every frame either page decoded came through the node: more than 10 each way.
    assert stats.calls == 1 and stats.legs == 2 and stats.forwarded_packets > 20
    [call] = [host.node.call(c) for c in host.node.call_ids()]
    assert call is not None and call.rtp is not None and call.rtp.tapped_frames > 20
    await desk_context.close()
    await app_context.close()
