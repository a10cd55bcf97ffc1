"""Two real aiortc peers wired straight to each other over loopback, no server.

This is the floor for the server path: how fast media can flow on this machine
when signaling costs nothing. The link below stands in for the server: it
delivers ``webrtc.*`` to the other peer and keeps ``media.state`` reports, as
the server consumes those rather than relaying them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

# A sibling module: pytest's default "prepend" import mode puts this folder (it
# has no __init__.py) on sys.path, under both `pytest` and `python -m pytest`.
from peer import MediaPeer, PeerFailed, PeerProtocolError, loopback_only_candidates

from signaling.messages import (
    WebRtcIce,
    WebRtcOffer,
    parse_client_media_message,
)
from signaling.sdp import validate_sdp

pytestmark = pytest.mark.media

CALL_ID = "call-direct-1"
FRAMES = 10
TIMEOUT_S = 10.0


class DirectLink:
    """Delivers each peer's messages to the other, checking them against the contract.

    With ``drop_candidates`` it loses every trickled candidate but still passes
    on end-of-candidates, so ICE has nothing to try.
    """

    def __init__(self, drop_candidates: bool = False) -> None:
        self.peers: dict[str, MediaPeer] = {}
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.drop_candidates = drop_candidates
        self._changed = asyncio.Event()

    def send_from(self, role: str) -> Any:
        other = "answerer" if role == "offerer" else "offerer"

        async def send(message: dict[str, Any]) -> None:
            parsed = parse_client_media_message(message)  # off-contract JSON fails here
            self.sent.append((role, message))
            self._changed.set()
            if parsed.type == "media.state":
                return
            if isinstance(parsed, WebRtcOffer):
                validate_sdp(parsed.sdp, "offer")
            if self.drop_candidates and isinstance(parsed, WebRtcIce) and parsed.candidate:
                return
            await self.peers[other].handle(message)

        return send

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; the caller bounds the wait."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    def states(self, role: str) -> list[str]:
        return [m["state"] for r, m in self.sent if r == role and m["type"] == "media.state"]

    def of_type(self, role: str, kind: str) -> list[dict[str, Any]]:
        return [m for r, m in self.sent if r == role and m["type"] == kind]


def _media_start(role: str) -> dict[str, Any]:
    return {"type": "media.start", "call_id": CALL_ID, "role": role, "ice_servers": []}


@contextlib.asynccontextmanager
async def _pair(
    trickle: bool = False, drop_candidates: bool = False
) -> AsyncIterator[tuple[MediaPeer, MediaPeer, DirectLink]]:
    link = DirectLink(drop_candidates)
    offerer = MediaPeer("offerer", [], link.send_from("offerer"), name="desk", trickle=trickle)
    answerer = MediaPeer("answerer", [], link.send_from("answerer"), name="app", trickle=trickle)
    link.peers = {"offerer": offerer, "answerer": answerer}
    try:
        yield offerer, answerer, link
    finally:
        await offerer.close()
        await answerer.close()


async def _start(offerer: MediaPeer, answerer: MediaPeer) -> float:
    started = time.monotonic()
    # The answerer first: its offer must find it ready, as over the server.
    await answerer.handle(_media_start("answerer"))
    await offerer.handle(_media_start("offerer"))
    return started


async def _wait_media(*peers: MediaPeer) -> None:
    await asyncio.gather(
        *(p.wait_for_frames(FRAMES, TIMEOUT_S, "video") for p in peers),
        *(p.wait_for_frames(FRAMES, TIMEOUT_S, "audio") for p in peers),
    )


def _assert_real_media(peer: MediaPeer) -> None:
    stats = peer.stats
    assert stats is not None
    assert stats.video_size == (320, 240)
    # The pattern moves every frame; allow a repeated frame or two from the codec.
    assert stats.changed_video_frames >= stats.video_frames // 2 > 0
    # A 0.3 full-scale tone survives Opus far above any noise floor.
    assert stats.audio_peak > 3000
    assert stats.connected_at is not None


def _report(
    capsys: pytest.CaptureFixture[str], label: str, started: float, *peers: MediaPeer
) -> None:
    parts = []
    for peer in peers:
        stats = peer.stats
        assert stats is not None and stats.first_video_at is not None
        assert stats.first_audio_at is not None
        parts.append(
            f"{peer.name}: video {stats.first_video_at - started:.3f} s, "
            f"audio {stats.first_audio_at - started:.3f} s"
        )
    with capsys.disabled():
        print(f"\n[direct-peer floor] {label} time to first decoded frame: " + "; ".join(parts))


async def test_video_and_audio_flow_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    async with _pair() as (offerer, answerer, link):
        started = await _start(offerer, answerer)
        await _wait_media(offerer, answerer)

        _report(capsys, "start", started, offerer, answerer)
        for peer in (offerer, answerer):
            _assert_real_media(peer)
        assert link.states("offerer") == ["connected"]
        assert link.states("answerer") == ["connected"]
        assert len(link.of_type("offerer", "webrtc.offer")) == 1
        assert len(link.of_type("answerer", "webrtc.answer")) == 1
        # Without trickle the candidates ride in the SDP.
        assert link.of_type("offerer", "webrtc.ice") == []
        assert "a=candidate:" in link.of_type("offerer", "webrtc.offer")[0]["sdp"]


async def test_trickled_candidates_alone_connect(capsys: pytest.CaptureFixture[str]) -> None:
    async with _pair(trickle=True) as (offerer, answerer, link):
        started = await _start(offerer, answerer)
        await _wait_media(offerer, answerer)

        _report(capsys, "trickle", started, offerer, answerer)
        for role in ("offerer", "answerer"):
            description = link.of_type(
                role, "webrtc.offer" if role == "offerer" else "webrtc.answer"
            )
            assert "a=candidate:" not in description[0]["sdp"]
            ice = [WebRtcIce.model_validate(m) for m in link.of_type(role, "webrtc.ice")]
            assert ice[-1].candidate is None  # end-of-candidates comes last
            assert all(m.candidate is not None for m in ice[:-1]) and len(ice) >= 2
        for peer in (offerer, answerer):
            _assert_real_media(peer)


async def test_restart_builds_new_connections_and_media_flows_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with _pair() as (offerer, answerer, link):
        await _start(offerer, answerer)
        await _wait_media(offerer, answerer)
        first = (offerer.stats, answerer.stats)

        restarted = time.monotonic()
        restart = {"type": "media.restart", "call_id": CALL_ID, "reason": "test"}
        assert await answerer.handle(restart)
        assert await offerer.handle(restart)
        await _wait_media(offerer, answerer)

        _report(capsys, "restart", restarted, offerer, answerer)
        for peer, old in zip((offerer, answerer), first, strict=True):
            assert peer.stats is not old
            assert peer.stats is not None and peer.stats.generation == 2
            assert [c.generation for c in peer.connections] == [1, 2]
            _assert_real_media(peer)
        assert len(link.of_type("offerer", "webrtc.offer")) == 2
        assert link.states("offerer") == ["connected", "connected"]
        assert link.states("answerer") == ["connected", "connected"]


async def test_connection_without_candidates_fails_and_is_reported() -> None:
    async with _pair(trickle=True, drop_candidates=True) as (offerer, answerer, link):
        await _start(offerer, answerer)
        for peer in (offerer, answerer):
            with pytest.raises(PeerFailed, match="failed"):
                await peer.wait_for_frames(1, TIMEOUT_S)
        assert offerer.reported_states == answerer.reported_states == ["failed"]
        assert offerer.connection_state == answerer.connection_state == "failed"
        # The reports travel through each peer's writer task.
        async with asyncio.timeout(2.0):
            await link.wait_for(
                lambda: link.states("offerer") == link.states("answerer") == ["failed"]
            )


@pytest.fixture
def loopback() -> Iterator[None]:
    with loopback_only_candidates():
        yield


@pytest.mark.usefixtures("loopback")
async def test_loopback_only_candidates_connect() -> None:
    async with _pair() as (offerer, answerer, link):
        await _start(offerer, answerer)
        await asyncio.gather(
            offerer.wait_for_frames(3, TIMEOUT_S), answerer.wait_for_frames(3, TIMEOUT_S)
        )
        sdp = link.of_type("offerer", "webrtc.offer")[0]["sdp"]
        hosts = {line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")}
        assert hosts == {"127.0.0.1"}


async def test_close_is_idempotent_and_leaves_no_task() -> None:
    async with _pair() as (offerer, answerer, _link):
        await _start(offerer, answerer)
        await offerer.wait_for_frames(1, TIMEOUT_S)
        mine = {t for t in asyncio.all_tasks() if t.get_name().startswith(("desk-", "app-"))}
        assert mine  # writers and frame consumers were running
        await offerer.close()
        await answerer.close()
        await offerer.close()
        assert all(t.done() for t in mine)
        assert offerer.stats is None
        assert (
            await offerer.handle({"type": "webrtc.ice", "call_id": CALL_ID, "candidate": None})
            is False
        )


async def test_messages_out_of_place_are_refused() -> None:
    async def nowhere(message: dict[str, Any]) -> None:
        raise AssertionError(f"nothing should be sent, got {message}")

    async with MediaPeer("answerer", [], nowhere, name="app") as peer:
        assert await peer.handle({"type": "queue.update", "call_id": CALL_ID}) is False
        with pytest.raises(PeerProtocolError, match=r"before media.start"):
            await peer.handle({"type": "webrtc.ice", "call_id": CALL_ID, "candidate": None})
        with pytest.raises(PeerProtocolError, match=r"this peer is the answerer"):
            await peer.handle(_media_start("offerer"))
        await peer.handle(_media_start("answerer"))
        with pytest.raises(PeerProtocolError, match=r"the answerer received an answer"):
            await peer.handle({"type": "webrtc.answer", "call_id": CALL_ID, "sdp": "v=0\r\n"})
        with pytest.raises(PeerProtocolError, match=r"for call other"):
            await peer.handle({"type": "media.restart", "call_id": "other"})
