"""The cyclic garbage collector: start-up's objects out of its way, its pauses measured.

CPython's cycle collector runs on the event loop's thread, in whatever allocation
trips its thresholds, and holds the loop for as long as it walks the objects of
the generation it collects. A full collection walks every tracked object, and a
serving node holds about 250,000 that live as long as the process: the modules,
the ORM's mappers and compiled statements, the pydantic models, the risk engine's
lexicons and statement model. Walking them took 130–180 ms a time on a node with
1,000 waiting customers' sockets (``bench/queue_scale.py``), about once every few
seconds while the queue moved: each such pass holds every socket's messages back.
With both measures below, that bench's windows (idle, 50 creates, 20 cancels at the
head) see no full collection at all, and 70-90 ms of collecting in all where there
were 300-520 ms.

:func:`freeze_start_up` moves what start-up built into the permanent generation
once the node is up (``gc.freeze``): later collections walk only what was made
since, the sockets and the calls. A frozen object is still freed by reference
counting; only a reference cycle among frozen objects would never be, so start-up's
garbage is collected just before, and nothing made after is frozen.

The young generation's threshold is raised too (:data:`YOUNG_THRESHOLD`): a cancel at
the head of the queue makes a few objects per socket it tells, a repair pass a few per
open call, and at CPython's default of 700 such a burst is collected while it is still
alive, survives, and fills the old generations with what reference counting would
have freed a moment later; each full collection is then brought forward.

:class:`CollectorWatch` times each collection into the application's registry
(``cloudbranch_gc_pause_seconds`` by generation), so a stall shows on a dashboard.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

#: Tracked objects made (net of those freed) before a young collection; a young
#: collection walks at most about this many, a few milliseconds.
YOUNG_THRESHOLD = 20_000


def freeze_start_up() -> int:
    """Collect start-up's garbage, freeze what is left, raise the young generation's
    threshold (the older two keep theirs); how many objects were frozen."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    return gc.get_freeze_count()


class CollectorWatch:
    """Times every collection of this process while started (one per application)."""

    def __init__(self, pauses: Histogram) -> None:
        self._pauses = pauses
        # One child per generation, made now: the callback must not allocate labels.
        self._by_generation = [pauses.labels(str(g)) for g in range(3)]
        self._began: float | None = None

    def start(self) -> None:
        if self._on_collect not in gc.callbacks:
            gc.callbacks.append(self._on_collect)

    def stop(self) -> None:
        if self._on_collect in gc.callbacks:
            gc.callbacks.remove(self._on_collect)

    def _on_collect(self, phase: str, info: dict[str, Any]) -> None:
        # Called by the interpreter around each collection, on whichever thread
        # allocated; the GIL is held, so the start and the stop pair up.
        if phase == "start":
            self._began = time.perf_counter()
            return
        began, self._began = self._began, None
        if began is not None:
            self._by_generation[info["generation"]].observe(time.perf_counter() - began)
