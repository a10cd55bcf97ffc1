"""ICE server lists and TURN REST credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.ice import (
    MAX_TURN_TTL_S,
    IceConfigError,
    ice_servers_for_call,
    turn_credentials,
)
from signaling.messages import MediaStart

NOW = 1_700_000_000.75
SECRET = "north-wind-7"


def expected_credential(secret: str, username: str) -> str:
    # Computed independently, as coturn's use-auth-secret does.
    mac = hmac.new(secret.encode(), username.encode(), "sha1").digest()
    return base64.b64encode(mac).decode()


def test_nothing_configured_means_no_servers_at_all() -> None:
    servers = ice_servers_for_call(
        stun_urls=[], turn_urls=[], turn_secret=None, ttl_s=300, call_id="c-1", now=NOW
    )
    assert servers == []


def test_secret_without_turn_urls_adds_nothing() -> None:
    servers = ice_servers_for_call(
        stun_urls=[], turn_urls=[], turn_secret=SECRET, ttl_s=300, call_id="c-1", now=NOW
    )
    assert servers == []


def test_stun_and_turn_entries() -> None:
    servers = ice_servers_for_call(
        stun_urls=["stun:turn.bank.example:3478"],
        turn_urls=["turn:turn.bank.example:3478?transport=udp", "turns:turn.bank.example:5349"],
        turn_secret=SECRET,
        ttl_s=300,
        call_id="c-1",
        now=NOW,
    )
    assert len(servers) == 2
    stun, turn = servers
    assert stun.urls == ["stun:turn.bank.example:3478"]
    assert stun.username is None and stun.credential is None
    assert turn.urls == [
        "turn:turn.bank.example:3478?transport=udp",
        "turns:turn.bank.example:5349",
    ]
    assert turn.username == "1700000300:c-1"
    assert turn.credential == expected_credential(SECRET, "1700000300:c-1")
    # And it goes on the wire in the browser's RTCIceServer shape.
    start = MediaStart(call_id="c-1", role="offerer", ice_servers=servers)
    assert start.model_dump(mode="json")["ice_servers"] == [
        {"urls": ["stun:turn.bank.example:3478"]},
        {"urls": turn.urls, "username": turn.username, "credential": turn.credential},
    ]


def test_known_vector() -> None:
    # Fixed value, from:  printf '%s' 1700000600:c-1 |
    #   openssl dgst -sha1 -hmac north-wind-7 -binary | base64
    creds = turn_credentials(SECRET, "c-1", 1_700_000_000.0, 600)
    assert creds.username == "1700000600:c-1"
    assert creds.expires_at == 1_700_000_600
    assert creds.credential == "cvjA7kaeuYJd3O7kPUYVifEa3Tk="
    assert creds.credential == expected_credential(SECRET, creds.username)
    assert len(base64.b64decode(creds.credential)) == hashlib.sha1().digest_size


@pytest.mark.parametrize(("ttl", "lifetime"), [(1, 1), (599, 599), (600, 600), (86400, 600)])
def test_ttl_is_capped_at_600_seconds(ttl: float, lifetime: int) -> None:
    creds = turn_credentials(SECRET, "c-1", 1000.0, ttl)
    assert creds.expires_at == 1000 + lifetime
    assert MAX_TURN_TTL_S == 600


@given(
    now=st.floats(min_value=0, max_value=4e9),
    ttl=st.floats(min_value=0.001, max_value=1e6),
    secret=st.text(min_size=1, max_size=64),
    call_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True),
)
def test_credentials_never_outlive_the_cap(
    now: float, ttl: float, secret: str, call_id: str
) -> None:
    creds = turn_credentials(secret, call_id, now, ttl)
    assert now - 1 < creds.expires_at <= now + MAX_TURN_TTL_S
    assert creds.username == f"{creds.expires_at}:{call_id}"
    assert creds.credential == expected_credential(secret, creds.username)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"turn_urls": ["turn:t.example:3478"], "turn_secret": None},
        {"turn_urls": ["turn:t.example:3478"], "turn_secret": ""},
        {"stun_urls": ["turn:t.example:3478"]},
        {"turn_urls": ["stun:t.example:3478"], "turn_secret": SECRET},
        {"stun_urls": ["stun:bad url"]},
        {"stun_urls": ["stun:s.example"] * 9},
        {"turn_urls": ["turn:t.example:3478"], "turn_secret": SECRET, "ttl_s": 0},
        {"turn_urls": ["turn:t.example:3478"], "turn_secret": SECRET, "call_id": "a:b"},
    ],
)
def test_unusable_settings_are_refused(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "stun_urls": [],
        "turn_urls": [],
        "turn_secret": SECRET,
        "ttl_s": 300,
        "call_id": "c-1",
        "now": NOW,
    }
    args.update(kwargs)
    with pytest.raises(IceConfigError):
        ice_servers_for_call(**args)  # type: ignore[arg-type]
