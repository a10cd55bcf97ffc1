"""Debian's real coturn with ``deploy/coturn/turnserver.conf``: the TURN REST
credentials the server hands out are accepted and media flows through the relay;
expired, forged and missing credentials are refused.

The repository's configuration is used as it is. The only changes are the test
overrides in :func:`_test_overrides` (loopback addresses, free ports, and letting
the relay reach 127.0.0.1, where both test peers live), passed on the command line.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioice import stun, turn
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    VideoStreamTrack,
)

from signaling.ice import turn_credentials
from signaling.rtc import rtc_ice_servers
from tests.api.harness import Api, prepare_template, running_server
from tests.deploy.processes import daemon, free_udp_port, require_binary, udp_port_range

CONF = Path(__file__).resolve().parents[2] / "deploy" / "coturn" / "turnserver.conf"
SECRET = "turn-test-shared-secret"
FRAMES = 20
MEDIA_TIMEOUT_S = 30.0

pytestmark = [pytest.mark.media, pytest.mark.slow]


@dataclass(frozen=True)
class Turn:
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _test_overrides(port: int, tmp: Path) -> list[str]:
    """Everything the test changes in the repository's configuration."""
    low, high = udp_port_range(40)
    return [
        f"--static-auth-secret={SECRET}",
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--min-port={low}",
        f"--max-port={high}",
        # Both test peers are on loopback, which the configuration denies as a peer.
        "--allow-loopback-peers",
        "--allowed-peer-ip=127.0.0.1",
        # No certificate in the test, and private files instead of system paths.
        "--no-tls",
        "--no-dtls",
        f"--pidfile={tmp / 'turnserver.pid'}",
        f"--userdb={tmp / 'turndb'}",
        # Log each allocation's user, so the test can see whose credential was used.
        "--verbose",
    ]


def _stun_answers(port: int) -> bool:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.sendto(bytes(request), ("127.0.0.1", port))
            data, _ = sock.recvfrom(2048)
        except OSError:
            return False
    return stun.parse_message(data).transaction_id == request.transaction_id


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Turn]:
    binary = require_binary("turnserver", "coturn")
    tmp = tmp_path_factory.mktemp("coturn")
    port = free_udp_port()
    argv = [binary, "-c", str(CONF), *_test_overrides(port, tmp)]
    log_path = tmp / "turnserver.log"
    with daemon("turnserver", argv, log_path, lambda: _stun_answers(port), cwd=tmp):
        yield Turn(port, log_path)


@pytest.fixture
async def handed_out_ice_servers(
    coturn: Turn, tmp_path: Path
) -> AsyncIterator[list[dict[str, Any]]]:
    """The ``ice_servers`` a real server puts in a customer's new call."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    await prepare_template(database_url)
    settings = {"database_url": database_url, "turn_urls": [coturn.url], "turn_secret": SECRET}
    async with (
        running_server(**settings) as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
    ):
        customer = await Api(server.base_url, session).customer("C1001")
        reply = await customer.post("/api/v1/calls", {"dialect": "cmn"})
        assert reply.status == 201, reply
        yield reply.body["ice_servers"]


def _relay_only(ice_servers: list[dict[str, Any]]) -> RTCPeerConnection:
    return RTCPeerConnection(
        RTCConfiguration(
            iceServers=rtc_ice_servers(ice_servers),
            iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        )
    )


def _candidate_types(sdp: str) -> set[str]:
    return {
        line.split(" typ ")[1].split()[0]
        for line in sdp.splitlines()
        if line.startswith("a=candidate:")
    }


def _selected_pair_types(pc: RTCPeerConnection) -> set[tuple[str, str]]:
    """(local, remote) candidate types of the pairs ICE nominated, per transport."""
    pairs = set()
    for transceiver in pc.getTransceivers():
        connection = transceiver.sender.transport.transport._connection  # aioice.Connection
        for pair in connection._nominated.values():
            pairs.add((pair.local_candidate.type, pair.remote_candidate.type))
    return pairs


async def _count_frames(track: Any, counts: dict[str, int], kind: str) -> None:
    while True:
        await track.recv()
        counts[kind] += 1


async def test_server_credentials_relay_media_through_coturn(
    coturn: Turn, handed_out_ice_servers: list[dict[str, Any]]
) -> None:
    turn_entry = next(s for s in handed_out_ice_servers if s["urls"][0].startswith("turn:"))
    assert turn_entry["urls"] == [coturn.url]
    username = turn_entry["username"]
    expiry, call_id = username.split(":", 1)
    assert int(expiry) > time.time()

    desk, app = _relay_only(handed_out_ice_servers), _relay_only(handed_out_ice_servers)
    counts = {"audio": 0, "video": 0}
    consumers: list[asyncio.Task[None]] = []

    @app.on("track")
    def on_track(track: Any) -> None:
        consumers.append(asyncio.create_task(_count_frames(track, counts, track.kind)))

    try:
        desk.addTrack(AudioStreamTrack())
        desk.addTrack(VideoStreamTrack())
        await desk.setLocalDescription(await desk.createOffer())
        offer = desk.localDescription
        # Relay-only: the offer carries nothing but coturn's relayed addresses.
        assert _candidate_types(offer.sdp) == {"relay"}, offer.sdp
        await app.setRemoteDescription(offer)
        await app.setLocalDescription(await app.createAnswer())
        assert _candidate_types(app.localDescription.sdp) == {"relay"}
        await desk.setRemoteDescription(app.localDescription)

        deadline = time.monotonic() + MEDIA_TIMEOUT_S
        while min(counts.values()) < FRAMES:
            assert desk.connectionState != "failed", coturn.log()[-3000:]
            assert time.monotonic() < deadline, (counts, coturn.log()[-3000:])
            await asyncio.sleep(0.1)
        assert _selected_pair_types(desk) == {("relay", "relay")}
        assert _selected_pair_types(app) == {("relay", "relay")}
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await desk.close()
        await app.close()
    # coturn accepted this call's credential (it logs the user of each allocation).
    log = coturn.log()
    assert f"user <{username}>" in log and "ALLOCATE processed, success" in log, log[-3000:]
    assert call_id


async def _allocate(coturn: Turn, username: str | None, password: str | None) -> int | None:
    """Try a TURN allocation; the STUN error code, or None when it succeeded."""
    try:
        transport, _ = await turn.create_turn_endpoint(
            asyncio.DatagramProtocol, ("127.0.0.1", coturn.port), username, password
        )
    except stun.TransactionFailed as exc:
        return int(exc.response.error_code)
    transport.close()
    return None


async def test_valid_credential_allocates(coturn: Turn) -> None:
    good = turn_credentials(SECRET, "call-fresh", time.time(), 600)
    assert await _allocate(coturn, good.username, good.credential) is None


async def test_expired_credential_is_refused(coturn: Turn) -> None:
    expired = turn_credentials(SECRET, "call-old", time.time() - 700, 600)
    assert expired.expires_at < time.time()
    assert await _allocate(coturn, expired.username, expired.credential) == 401


async def test_forged_credential_is_refused(coturn: Turn) -> None:
    forged = turn_credentials("not-the-shared-secret", "call-forged", time.time(), 600)
    assert await _allocate(coturn, forged.username, forged.credential) == 401
    # A valid username with another call's password is a forgery too.
    other = turn_credentials(SECRET, "call-other", time.time(), 600)
    assert await _allocate(coturn, forged.username, other.credential) == 401


async def test_no_open_relay(coturn: Turn) -> None:
    assert await _allocate(coturn, None, None) == 401
