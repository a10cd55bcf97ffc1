"""Capacity simulation of a day at the branch: ``cloudbranch simulate``.

A discrete-event simulation drives the real in-process routing backend
(:class:`server.routing.memory.MemoryQueueBackend`, over the pure model in
:mod:`server.routing.model`) on a simulated clock, so a day runs in seconds with
the same ladder, priorities, offer leases, misses and wrap-up as the live
service. ``--live`` drives a running server through its public API instead.
"""
