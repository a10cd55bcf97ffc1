"""``cloudbranch staff``: an operator disables, revokes and enables from the shell,
against the database a running server uses; the server follows within its cache period."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server.appkeys import CALLS
from server.db.banking import AuditEntry
from tests.api.harness import Api, RunningServer
from tests.api.helpers import BOTH_DATABASES, assert_problem, close_frame_code, seeded_database

CLOSE_UNAUTHORIZED = 4401


@pytest.fixture(params=BOTH_DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with seeded_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def server_settings() -> dict[str, Any]:
    # The test client reads nothing while the command runs (seconds, on a loaded
    # machine): a long heartbeat keeps the server from dropping it meanwhile.
    return {"staff_check_cache_s": 0.3, "ws_heartbeat_s": 120}


async def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDBRANCH_")},
        "CLOUDBRANCH_DEV_MODE": "1",
        "CLOUDBRANCH_DATABASE_URL": database_url,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server.cli", "staff", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_staff_command_disables_and_enables_an_account(
    api: Api, server: RunningServer, database_url: str
) -> None:
    desk = await api.specialist("liang.mei")
    socket = await desk.connect()

    disabled = await cli(database_url, "disable", "liang.mei")
    assert disabled.returncode == 0, disabled
    assert "S05: active=False sessions_revoked=1" in disabled.stdout
    await socket.expect("error", code="account_disabled", timeout=10)
    assert await close_frame_code(socket, within=10) == CLOSE_UNAUTHORIZED
    assert_problem(
        await desk.put("/api/v1/desk/presence", {"state": "away"}), 401, "account_disabled"
    )

    enabled = await cli(database_url, "enable", "S05")
    assert enabled.returncode == 0 and "active=True" in enabled.stdout, enabled
    again = await api.specialist("liang.mei")
    revoked = await cli(database_url, "revoke", "S05")
    assert "sessions_revoked=1" in revoked.stdout, revoked
    await asyncio.sleep(0.5)  # past the server's cache period
    assert_problem(
        await again.put("/api/v1/desk/presence", {"state": "away"}), 401, "session_revoked"
    )

    missing = await cli(database_url, "disable", "nobody")
    assert missing.returncode == 1 and "nobody" in missing.stderr

    async with server.app[CALLS].sessions() as session:
        rows = (await session.execute(select(AuditEntry))).scalars()
        operator = [e.kind for e in rows if e.actor_role == "operator"]
    assert operator == ["staff.disabled", "staff.enabled", "staff.sessions_revoked"]
