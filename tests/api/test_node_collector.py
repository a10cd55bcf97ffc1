"""A serving process freezes what start-up built, and its collections show in /metrics."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from tests.api.harness import prepare_template
from tests.api.nodes import nodes

pytestmark = [pytest.mark.slow]


def _pause_counts(metrics: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("cloudbranch_gc_pause_seconds_count{"):
            labels, _, value = line.partition("} ")
            counts[labels.split('generation="')[1].rstrip('"')] = float(value)
    return counts


async def test_the_node_freezes_start_up_and_times_its_collections(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    await prepare_template(url)
    async with nodes(1, url, None, tmp_path) as [node], aiohttp.ClientSession() as http:
        async with http.get(node.base_url + "/metrics") as response:
            assert response.status == 200
            counts = _pause_counts(await response.text())
        frozen = [
            json.loads(line)
            for line in node.log_path.read_text().splitlines()
            if '"node.start_up_frozen"' in line
        ]
    assert len(frozen) == 1, frozen
    # The modules, mappers, models and the risk engine's lexicons: far more than a
    # few thousand objects, or the freeze did not happen after start-up.
    assert frozen[0]["objects"] > 50_000
    assert set(counts) == {"0", "1", "2"}
    # The freeze's own full collection came after the watch started.
    assert counts["2"] >= 1
