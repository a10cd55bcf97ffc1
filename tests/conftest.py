"""The suite's shared fixtures are one plugin, tests/plugin (its docstring lists them).

``make test`` runs pytest under ``tests/services.py``, which starts throwaway
Redis and PostgreSQL servers and exports their addresses; a test that needs a
service and does not get one FAILS, it is never skipped.
"""

from __future__ import annotations

import pytest

# The plugin's modules are imported below, before pytest would load them: have
# their asserts rewritten all the same.
pytest.register_assert_rewrite("tests.plugin")

# Kept for tests that imported these helpers from here; new code imports them
# from tests.plugin.databases.
from tests.plugin.databases import _admin as _admin  # noqa: E402
from tests.plugin.databases import _run_async as _run_async  # noqa: E402

pytest_plugins = ["tests.plugin.services", "tests.plugin.databases", "tests.plugin.servers"]
