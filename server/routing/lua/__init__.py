"""Lua scripts of the Redis queue backend, shipped as package data.

``common.lua`` is prepended to every other script; see
:mod:`server.routing.redis_scripts` for how they are put together.
"""
