"""The supervisor's figures: every specialist counted, "today" in the branch's time zone
(SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.calls.supervision import local_day_start
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Call
from tests.api.harness import Api

# Shanghai is UTC+8 and Kiritimati UTC+14: their midnights are far from UTC's, so a
# count that started the day at UTC midnight gets at least one of the calls below wrong.
ZONES = ["Asia/Shanghai", "Pacific/Kiritimati"]


@pytest.fixture(params=ZONES)
def server_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"branch_timezone": request.param}


async def test_stats_and_metrics_count_every_specialist_as_the_list_shows_them(api: Api) -> None:
    supervisor = await api.supervisor()
    _desk, _desk_socket = await api.available_specialist("wang.fang")
    await api.specialist("zhou.min")  # logged in, no desk socket: still offline

    listed = (await supervisor.get("/api/v1/specialists")).body
    stats = (await supervisor.get("/api/v1/stats")).body
    assert len(listed) == 10
    listed_states = Counter(s["state"] for s in listed)
    assert stats["specialists"] == {
        state: listed_states.get(state, 0) for state in stats["specialists"]
    }
    assert sum(stats["specialists"].values()) == 10
    assert stats["specialists"]["available"] == 1
    assert stats["specialists"]["offline"] == 9
    metrics = (await api.request("GET", "/metrics")).body
    assert 'cloudbranch_specialists{state="offline"} 9.0' in metrics
    assert 'cloudbranch_specialists{state="available"} 1.0' in metrics


async def _insert_ended_call(
    database_url: str, customer_id: str, at: datetime, *, answered: bool
) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            session.add(
                Call(
                    call_id=uuid.uuid4().hex,
                    customer_id=customer_id,
                    state="ended",
                    end_reason="completed" if answered else "abandoned",
                    priority="normal",
                    callback_allowed=False,
                    context={},
                    created_at=at - timedelta(seconds=20),
                    enqueued_at=at - timedelta(seconds=20),
                    answered_at=at if answered else None,
                    ended_at=at + timedelta(seconds=1),
                    actual_wait_s=20.0 if answered else None,
                )
            )
    finally:
        await engine.dispose()


async def test_today_starts_at_midnight_in_the_branch_time_zone(
    api: Api, database_url: str, server_settings: dict[str, Any]
) -> None:
    zone = ZoneInfo(server_settings["branch_timezone"])
    midnight = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    just_before = midnight.astimezone(UTC) - timedelta(seconds=5)
    just_after = midnight.astimezone(UTC) + timedelta(seconds=2)
    # Yesterday, local time: neither counts.
    await _insert_ended_call(database_url, "C1005", just_before, answered=True)
    await _insert_ended_call(database_url, "C1006", just_before, answered=False)
    # Today, local time: one answered, one abandoned.
    await _insert_ended_call(database_url, "C1007", just_after, answered=True)
    await _insert_ended_call(database_url, "C1008", just_after, answered=False)

    stats = (await (await api.supervisor()).get("/api/v1/stats")).body
    assert stats["answered_today"] == 1
    assert stats["abandonment"] == 0.5
    assert stats["service_level"] == 0.5  # the answered one waited 20 s, under 60 s
    assert stats["median_wait_today_s"] == 20.0


def test_local_day_start_is_the_local_midnight_in_utc() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    # 2026-03-01 01:30 in Shanghai is 2026-02-28 17:30 UTC: the day began at 16:00 UTC.
    now = datetime(2026, 2, 28, 17, 30, tzinfo=UTC).timestamp()
    assert local_day_start(now, shanghai) == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    # 23:59 in Shanghai is still the same local day.
    late = datetime(2026, 3, 1, 15, 59, tzinfo=UTC).timestamp()
    assert local_day_start(late, shanghai) == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert local_day_start(now, ZoneInfo("UTC")) == datetime(2026, 2, 28, tzinfo=UTC)
