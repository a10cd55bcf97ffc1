"""The garbage collector's watch and the start-up freeze (server/collector.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from server.collector import YOUNG_THRESHOLD, CollectorWatch, freeze_start_up
from server.metrics import Metrics


def _count(histogram: Histogram, generation: int) -> float:
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["generation"] == str(generation):
                return sample.value
    return 0.0


@pytest.fixture
def watch() -> Iterator[tuple[CollectorWatch, Histogram]]:
    pauses = Metrics(registry=CollectorRegistry()).gc_pauses
    watch = CollectorWatch(pauses)
    try:
        yield watch, pauses
    finally:
        watch.stop()


def test_each_collection_is_timed_in_its_generation_while_started(
    watch: tuple[CollectorWatch, Histogram],
) -> None:
    collector, pauses = watch
    gc.collect(2)
    assert _count(pauses, 2) == 0  # not started: nothing observed

    collector.start()
    collector.start()  # a second start registers nothing more
    gc.collect(2)
    gc.collect(1)
    assert _count(pauses, 2) == 1
    assert _count(pauses, 1) >= 1  # and any young collection that ran meanwhile

    collector.stop()
    gc.collect(2)
    assert _count(pauses, 2) == 1


class _Node:
    def __init__(self) -> None:
        self.partner: _Node | None = None


def test_the_freeze_collects_start_ups_garbage_first_and_frees_nothing_alive() -> None:
    # A reference cycle nobody holds: only the cycle collector can free it, and a
    # frozen cycle it would never look at again.
    garbage_a, garbage_b = _Node(), _Node()
    garbage_a.partner, garbage_b.partner = garbage_b, garbage_a
    gone = weakref.ref(garbage_a)
    del garbage_a, garbage_b
    kept = _Node()
    kept.partner = kept
    thresholds = gc.get_threshold()
    try:
        frozen = freeze_start_up()
        assert gone() is None
        assert frozen == gc.get_freeze_count() > 0
        assert kept.partner is kept
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()  # the other tests of this process collect as usual
        gc.set_threshold(*thresholds)
