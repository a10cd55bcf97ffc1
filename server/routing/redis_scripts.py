"""The Redis backend's Lua scripts: loaded from package data, registered per client.

Each script in ``server/routing/lua/`` is prefixed with ``common.lua`` (key layout
and shared helpers) and registered with ``register_script``, so it runs by
EVALSHA and is loaded again transparently after a server restart or failover.
Every script takes the key prefix as ``ARGV[1]``; the other arguments are listed
at the top of each file.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

ScriptName = Literal[
    "accept",
    "changes",
    "connect",
    "decline",
    "disconnect",
    "dispatch",
    "end_call",
    "enqueue",
    "expire_offers",
    "finish_wrap_up",
    "heartbeat",
    "live_calls",
    "noop",
    "pending_offer",
    "position",
    "reap_dead_nodes",
    "reap_stale",
    "register",
    "remove",
    "restore_assignment",
    "set_presence",
    "snapshot",
    "staffing",
    "standings",
]

_NAMES: tuple[ScriptName, ...] = get_args(ScriptName)
# The floor script is measured bare: it is the cost of a round trip and nothing else.
_BARE = frozenset({"noop"})


def _read(name: str) -> str:
    return resources.files("server.routing.lua").joinpath(f"{name}.lua").read_text("utf-8")


@functools.cache
def source(name: ScriptName) -> str:
    """The full text of one script, prelude included."""
    body = _read(name)
    return body if name in _BARE else f"{_read('common')}\n{body}"


class Scripts:
    """Every routing script registered on one client, all sharing one key prefix."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(source(name)) for name in _NAMES
        }

    async def run(self, name: ScriptName, *args: str | int) -> Any:
        """Run ``name`` with ``ARGV = [prefix, *args]`` and return its raw reply."""
        return await self._scripts[name](args=(self._prefix, *args))

    async def run_list(self, name: ScriptName, *args: str | int) -> Sequence[Any]:
        return cast("Sequence[Any]", await self.run(name, *args))
