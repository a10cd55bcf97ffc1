"""The redirect signature verifier: header parsing, skew window, constant-time compare."""

from __future__ import annotations

import hmac
import shlex
from pathlib import Path
from typing import Any

import pytest

from server.cli import main
from server.http.problems import status_of
from server.redirects import signature
from server.redirects.signature import Flaw, InvalidSignature, parse_signature, sign, verify

SECRET = "s3cret"
BODY = b'{"event_id":"e1","customer_id":"C1001","kind":"password_locked","context":{}}\n'
T = 1_700_000_000
# HMAC-SHA256("s3cret", "1700000000." + BODY), computed independently with
# `openssl dgst -sha256 -hmac s3cret`.
KNOWN = "sha256=feef8e3e31f2dcf4c13c2d41df2e92d7be2466258bb7ec7ddcb0e965c5f4f432"


def check(
    timestamp: str | None = str(T),
    sig: str | None = KNOWN,
    body: bytes = BODY,
    *,
    now: float = T,
    skew_s: float = 300,
    secret: str = SECRET,
) -> int:
    return verify(secret, timestamp, sig, body, now=now, skew_s=skew_s)


def flaw_of(**kwargs: Any) -> Flaw:
    with pytest.raises(InvalidSignature) as caught:
        check(**kwargs)
    assert status_of(caught.value) == 401
    assert caught.value.code == "invalid_signature"
    return caught.value.flaw


def test_sign_matches_an_independent_hmac() -> None:
    assert sign(SECRET, T, BODY) == KNOWN
    assert sign(SECRET, str(T), BODY) == KNOWN
    assert check() == T


@pytest.mark.parametrize("offset", [0, 1, 299, 299.999, 300, -1, -299.999, -300])
def test_timestamps_within_the_window_either_way_pass(offset: float) -> None:
    assert check(now=T + offset) == T


@pytest.mark.parametrize("offset", [300.001, 301, 86_400, -300.001, -301, -86_400])
def test_timestamps_outside_the_window_either_way_are_stale(offset: float) -> None:
    # now - T > 300: the request is old; now - T < -300: it claims to come from the future.
    assert flaw_of(now=T + offset) is Flaw.STALE_TIMESTAMP


def test_the_window_is_a_setting() -> None:
    assert check(now=T + 10, skew_s=10) == T
    assert flaw_of(now=T + 11, skew_s=10) is Flaw.STALE_TIMESTAMP


def test_a_stale_request_names_its_claimed_time() -> None:
    with pytest.raises(InvalidSignature) as caught:
        check(now=T + 1000)
    assert caught.value.timestamp == T


@pytest.mark.parametrize(
    ("kwargs", "flaw"),
    [
        ({"timestamp": None}, Flaw.MISSING_TIMESTAMP),
        ({"timestamp": ""}, Flaw.MISSING_TIMESTAMP),
        ({"timestamp": "   "}, Flaw.MISSING_TIMESTAMP),
        ({"sig": None}, Flaw.MISSING_SIGNATURE),
        ({"sig": ""}, Flaw.MISSING_SIGNATURE),
        ({"timestamp": "abc"}, Flaw.MALFORMED_TIMESTAMP),
        ({"timestamp": "-1700000000"}, Flaw.MALFORMED_TIMESTAMP),
        ({"timestamp": "+1700000000"}, Flaw.MALFORMED_TIMESTAMP),
        ({"timestamp": "1700000000.5"}, Flaw.MALFORMED_TIMESTAMP),
        ({"timestamp": "1.7e9"}, Flaw.MALFORMED_TIMESTAMP),
        ({"timestamp": "1" * 13}, Flaw.MALFORMED_TIMESTAMP),
        ({"timestamp": "١٧٠٠٠٠٠٠٠٠"}, Flaw.MALFORMED_TIMESTAMP),  # non-ASCII digits
        ({"sig": KNOWN.removeprefix("sha256=")}, Flaw.MALFORMED_SIGNATURE),
        ({"sig": KNOWN.replace("sha256=", "sha1=")}, Flaw.MALFORMED_SIGNATURE),
        ({"sig": KNOWN.replace("sha256=", "sha256:")}, Flaw.MALFORMED_SIGNATURE),
        ({"sig": KNOWN.replace("sha256=", "SHA256=")}, Flaw.MALFORMED_SIGNATURE),
        ({"sig": KNOWN[:-2]}, Flaw.MALFORMED_SIGNATURE),
        ({"sig": KNOWN + "00"}, Flaw.MALFORMED_SIGNATURE),
        ({"sig": KNOWN[:-1] + "g"}, Flaw.MALFORMED_SIGNATURE),
        ({"sig": KNOWN + "," + KNOWN}, Flaw.MALFORMED_SIGNATURE),
        ({"sig": "sha256=" + "é" * 64}, Flaw.MALFORMED_SIGNATURE),
    ],
)
def test_missing_and_malformed_headers(kwargs: dict[str, Any], flaw: Flaw) -> None:
    assert flaw_of(**kwargs) is flaw


def test_headers_tolerate_surrounding_space_and_upper_case_hex() -> None:
    assert check(timestamp=f" {T} ", sig=" sha256=" + KNOWN[7:].upper() + " ") == T
    assert parse_signature(KNOWN) == bytes.fromhex(KNOWN[7:])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"body": BODY.replace(b"C1001", b"C1002")},  # the body changed in transit
        {"body": BODY.rstrip(b"\n")},  # even one byte
        {"timestamp": str(T + 1), "now": T + 1},  # the timestamp changed
        {"timestamp": "0" + str(T)},  # the same instant, spelt differently: not what was signed
        {"secret": "another secret"},
        {"sig": "sha256=" + "0" * 64},
    ],
)
def test_anything_but_the_signed_bytes_and_secret_mismatches(kwargs: dict[str, Any]) -> None:
    assert flaw_of(**kwargs) is Flaw.MISMATCH


def test_digests_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature.hmac, "compare_digest", spy)
    check()
    flaw_of(sig="sha256=" + "0" * 64)
    # A stale request is compared too, so it costs the same as any other.
    flaw_of(now=T + 1000)
    assert len(calls) == 3
    assert all(isinstance(a, bytes) and len(a) == len(b) == 32 for a, b in calls)


def test_an_empty_secret_is_a_programming_error_not_an_open_door() -> None:
    with pytest.raises(ValueError):
        check(secret="", sig=sign("", T, BODY))


def test_details_say_what_to_fix_without_echoing_the_signature() -> None:
    bad = "sha256=" + "ab" * 32
    with pytest.raises(InvalidSignature) as caught:
        check(sig=bad)
    assert "ab" * 32 not in caught.value.detail
    assert "match" in caught.value.detail


def test_the_signing_command_prints_headers_and_a_curl_that_sends_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = tmp_path / "redirect.json"
    body.write_bytes(BODY)
    monkeypatch.setenv("CLOUDBRANCH_REDIRECT_SECRET", SECRET)
    url = "http://branch.example/api/v1/redirects"
    assert main(["redirect-sign", "--body", str(body), "--timestamp", str(T), "--url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [f"X-CB-Timestamp: {T}", f"X-CB-Signature: {KNOWN}", ""]
    assert shlex.split(lines[3]) == [
        "curl",
        "-sS",
        "-X",
        "POST",
        url,
        "-H",
        "Content-Type: application/json",
        "-H",
        f"X-CB-Timestamp: {T}",
        "-H",
        f"X-CB-Signature: {KNOWN}",
        "--data-binary",
        f"@{body}",
    ]
    assert SECRET not in "\n".join(lines)


def test_the_signing_command_needs_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOUDBRANCH_REDIRECT_SECRET", raising=False)
    body = tmp_path / "redirect.json"
    body.write_bytes(BODY)
    assert main(["redirect-sign", "--body", str(body)]) == 2
    assert "CLOUDBRANCH_REDIRECT_SECRET" in capsys.readouterr().err
    assert main(["redirect-sign", "--secret", SECRET, "--body", str(tmp_path / "nope")]) == 2
