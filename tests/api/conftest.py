"""API tests use the suite's plugin (tests/plugin): ``database_url`` on SQLite and
PostgreSQL, a running ``server`` and an ``api`` client.

The fixtures are imported here as well, for test folders that still import them
from this file; new code needs no import (the plugin provides them everywhere).
"""

from __future__ import annotations

from tests.plugin.databases import database_url as database_url
from tests.plugin.databases import postgres_template as postgres_template
from tests.plugin.databases import sqlite_template as sqlite_template
from tests.plugin.servers import api as api
from tests.plugin.servers import default_media_mode as default_media_mode
from tests.plugin.servers import server as server
from tests.plugin.servers import server_settings as server_settings
