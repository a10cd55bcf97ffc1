"""The suite's shared fixtures, one pytest plugin (registered in tests/conftest.py):

- :mod:`tests.plugin.services`: the real Redis and PostgreSQL servers that
  ``tests/services.py`` starts (``redis_url``, ``redis_client``, ``postgres_url``)
  and the rule that a test needing one fails, never skips, without it;
- :mod:`tests.plugin.databases`: migrated and seeded databases (``sqlite_template``,
  ``postgres_template``, ``database_url`` on both, ``sessions`` on it,
  ``fresh_postgres_db``) and the
  one PostgreSQL template clone (:func:`tests.plugin.databases.postgres_clone`);
- :mod:`tests.plugin.servers`: a real server on loopback and a client for it
  (``server_settings``, ``default_media_mode``, ``server``, ``api``).

A test folder overrides a fixture by defining one of the same name in its
conftest.py; tests import helpers from here, never from another folder's conftest.
"""
