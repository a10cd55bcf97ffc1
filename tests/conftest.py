"""The suite's shared fixtures are one plugin, tests/plugin (its docstring lists them).

``make test`` runs pytest under ``tests/services.py``, which starts throwaway
Redis and PostgreSQL servers and exports their addresses; a test that needs a
service and does not get one FAILS, it is never skipped.
"""

from __future__ import annotations

import pytest

# The plugin's modules are also imported by tests (for helpers) before pytest
# would load them: have their asserts rewritten all the same.
pytest.register_assert_rewrite("tests.plugin")

pytest_plugins = ["tests.plugin.services", "tests.plugin.databases", "tests.plugin.servers"]
