"""Real server processes (``cloudbranch serve``) for multi-node tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Node:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def wait_ready(node: Node, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited early:\n{node.log()}")
            try:
                async with session.get(node.base_url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{node.name} not ready in {timeout}s:\n{node.log()}")


@asynccontextmanager
async def nodes(
    count: int,
    database_url: str,
    redis_url: str | None,
    log_dir: Path,
    *,
    ready_timeout_s: float = 30.0,
    **settings: str,
) -> AsyncIterator[list[Node]]:
    """Start ``count`` server processes sharing one database and one Redis."""
    started: list[Node] = []
    try:
        for index in range(count):
            name = f"node{index + 1}"
            port = free_port()
            env = {
                **os.environ,
                "CLOUDBRANCH_DATABASE_URL": database_url,
                **({"CLOUDBRANCH_REDIS_URL": redis_url} if redis_url else {}),
                "CLOUDBRANCH_DEV_MODE": "1",
                "CLOUDBRANCH_NODE_ID": name,
                "CLOUDBRANCH_LOG_FORMAT": "json",
                "CLOUDBRANCH_DISPATCH_INTERVAL_S": "0.05",
                # Every answer is checked against its route's declaration, as in-process.
                "CLOUDBRANCH_CHECK_RESPONSES": "1",
                # Each node's spool is its own local disk, as in production; a
                # shared one would make each start salvage other tests' files.
                "CLOUDBRANCH_RECORDING_SPOOL_DIR": str(log_dir / f"{name}-spool"),
                **{f"CLOUDBRANCH_{k.upper()}": v for k, v in settings.items()},
            }
            log_path = log_dir / f"{name}.log"
            with log_path.open("wb") as log_file:
                # Popen returns at once; the server then runs on its own.
                process = subprocess.Popen(  # noqa: ASYNC220
                    [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            started.append(Node(name, f"http://127.0.0.1:{port}", process, log_path))
        await asyncio.gather(*(wait_ready(node, ready_timeout_s) for node in started))
        yield started
    finally:
        for node in started:
            if node.process.poll() is None:
                node.process.terminate()
        for node in started:
            try:
                await asyncio.to_thread(node.process.wait, 15)
            except subprocess.TimeoutExpired:
                node.process.kill()
