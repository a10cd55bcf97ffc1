"""Settings validation: what the service refuses to start with."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.settings import DEV_SECRET, Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes counts, not the shell the tests run in."""
    for name in ("JWT_SECRET", "DEV_MODE", "LOG_FORMAT", "SETTINGS_FILE"):
        monkeypatch.delenv(f"CLOUDBRANCH_{name}", raising=False)


def test_a_jwt_secret_is_required_outside_development() -> None:
    with pytest.raises(ValidationError, match="CLOUDBRANCH_JWT_SECRET is required"):
        Settings(dev_mode=False)
    with pytest.raises(ValidationError):
        Settings()  # dev mode is off unless configured
    assert Settings(dev_mode=False, jwt_secret="s" * 32).signing_secret == "s" * 32


def test_development_mode_falls_back_to_the_dev_secret() -> None:
    settings = Settings(dev_mode=True)
    assert settings.signing_secret == DEV_SECRET
    assert Settings(dev_mode=True, jwt_secret="mine-0123456789").signing_secret == (
        "mine-0123456789"
    )


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings(dev_mode=False, jwt_secret="very-secret-value-0123456789-abcdef")
    assert "very-secret-value" not in repr(settings)
    assert "very-secret-value" not in str(settings.model_dump())


def test_the_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDBRANCH_DEV_MODE", "0")
    monkeypatch.setenv("CLOUDBRANCH_JWT_SECRET", "from-the-environment-0123456789-abcdef")
    monkeypatch.setenv("CLOUDBRANCH_OFFER_LEASE_S", "7.5")
    settings = Settings()
    assert settings.signing_secret == "from-the-environment-0123456789-abcdef"
    assert settings.offer_lease_s == 7.5


@pytest.mark.parametrize(
    "bad",
    [
        {"offer_lease_s": 0},
        {"offer_lease_s": 301},
        {"proficiency_threshold": 0},
        {"proficiency_threshold": 6},
        {"token_ttl_s": 10},
        {"max_body_bytes": 10},
        {"ws_max_message_bytes": 10},
        {"ws_send_queue": 1},
        {"dispatch_interval_s": 0},
        {"dialect_wait_s": -1},
        {"log_format": "xml"},
        {"turn_ttl_s": 3600},
    ],
)
def test_out_of_range_knobs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(dev_mode=True, **bad)  # type: ignore[arg-type]
    assert next(iter(bad)) in str(raised.value)


def test_log_format_follows_the_mode_unless_set() -> None:
    assert Settings(dev_mode=True).effective_log_format == "console"
    assert Settings(dev_mode=False, jwt_secret="x" * 32).effective_log_format == "json"
    assert Settings(dev_mode=True, log_format="json").effective_log_format == "json"


def test_settings_are_frozen() -> None:
    settings = Settings(dev_mode=True)
    with pytest.raises(ValidationError):
        settings.offer_lease_s = 1  # type: ignore[misc]


def test_routing_policy_carries_the_routing_knobs() -> None:
    policy = Settings(
        dev_mode=True, dialect_wait_s=12, offer_lease_s=4, max_consecutive_misses=2
    ).routing_policy()
    assert (policy.dialect_wait_s, policy.offer_lease_s, policy.max_consecutive_misses) == (
        12,
        4,
        2,
    )


def test_sqlite_path() -> None:
    url = "sqlite+aiosqlite:///var/x/cloudbranch.db"
    assert str(Settings(dev_mode=True, database_url=url).sqlite_path()) == "var/x/cloudbranch.db"
    memory = Settings(dev_mode=True, database_url="sqlite+aiosqlite:///:memory:")
    assert memory.sqlite_path() is None
    postgres = Settings(dev_mode=True, database_url="postgresql+asyncpg://u@h/db")
    assert postgres.sqlite_path() is None
