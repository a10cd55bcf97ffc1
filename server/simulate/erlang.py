"""Erlang C: the M/M/N queue's waiting probability, mean wait and service level,
and the staff it takes to meet a service level. Pure functions."""

from __future__ import annotations

import math

MAX_AGENTS = 10_000


def erlang_c(agents: int, offered_erlangs: float) -> float:
    """Probability that a call waits, with ``agents`` servers and load ``A = λ·AHT``.

    Computed through the Erlang B recursion (stable for large N); 1.0 when the
    queue is unstable (``A >= N``).
    """
    if offered_erlangs <= 0:
        return 0.0
    if agents <= offered_erlangs:
        return 1.0
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = offered_erlangs * blocking / (n + offered_erlangs * blocking)
    rho = offered_erlangs / agents
    return blocking / (1.0 - rho + rho * blocking)


def mean_wait(agents: int, arrival_rate: float, handle_s: float) -> float:
    """Mean wait in the queue (all calls, answered at once ones included), seconds."""
    load = arrival_rate * handle_s
    if load <= 0:
        return 0.0
    if agents <= load:
        return math.inf
    return erlang_c(agents, load) * handle_s / (agents - load)


def service_level(agents: int, arrival_rate: float, handle_s: float, target_s: float) -> float:
    """Share of calls answered within ``target_s``."""
    load = arrival_rate * handle_s
    if load <= 0:
        return 1.0
    if agents <= load:
        return 0.0
    return 1.0 - erlang_c(agents, load) * math.exp(-(agents - load) * target_s / handle_s)


def agents_needed(arrival_rate: float, handle_s: float, target_s: float, goal: float) -> int:
    """The fewest agents for a service level of at least ``goal``."""
    load = arrival_rate * handle_s
    if load <= 0:
        return 0
    agents = max(1, math.floor(load) + 1)
    while service_level(agents, arrival_rate, handle_s, target_s) < goal:
        agents += 1
        if agents > MAX_AGENTS:
            raise ValueError("more than 10,000 agents needed; check the profile's units")
    return agents
