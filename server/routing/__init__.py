"""Queueing and routing of calls to specialists: pure model, interface, backends."""
