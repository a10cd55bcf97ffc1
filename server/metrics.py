"""Prometheus metrics, one registry per application (so tests can run several)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_WAIT_BUCKETS = (5, 10, 20, 30, 60, 120, 180, 300, 600, 1200, 1800)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# A young collection takes well under a millisecond; a full one over the whole heap
# held the loop 130-180 ms before start-up's objects were frozen (server/collector.py).
_GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.queue_depth = Gauge(
            "cloudbranch_queue_depth", "Waiting calls by dialect", ["dialect"], registry=r
        )
        self.longest_wait = Gauge(
            "cloudbranch_queue_longest_wait_seconds",
            "Longest current wait by dialect",
            ["dialect"],
            registry=r,
        )
        self.specialists = Gauge(
            "cloudbranch_specialists", "Specialists by state", ["state"], registry=r
        )
        self.calls_created = Counter(
            "cloudbranch_calls_created_total", "Calls created", ["priority"], registry=r
        )
        self.calls_ended = Counter(
            "cloudbranch_calls_ended_total", "Calls ended", ["end_reason"], registry=r
        )
        self.offers = Counter("cloudbranch_offers_total", "Offers made", ["step"], registry=r)
        self.offer_outcomes = Counter(
            "cloudbranch_offer_outcomes_total",
            "What became of offers",
            ["outcome"],  # accepted, declined, missed, withdrawn
            registry=r,
        )
        self.wait_seconds = Histogram(
            "cloudbranch_wait_seconds",
            "Wait from queueing to answer",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.assignment_latency = Histogram(
            "cloudbranch_assignment_latency_seconds",
            "Time one dispatch pass takes to reserve call/specialist pairs",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.gc_pauses = Histogram(
            "cloudbranch_gc_pause_seconds",
            "How long each cycle collection held the event loop, by generation",
            ["generation"],
            buckets=_GC_PAUSE_BUCKETS,
            registry=r,
        )
        self.ws_clients = Gauge(
            "cloudbranch_ws_clients", "Connected sockets on this node", ["role"], registry=r
        )
