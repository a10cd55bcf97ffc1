"""Routing contract suite: both queue backends, one set of tests."""
