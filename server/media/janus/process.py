"""A private Janus process: started with a generated configuration, watched, stopped.

Used when ``CLOUDBRANCH_JANUS_URL`` is unset, so that one machine with Debian's
``janus`` installed runs the Janus backend with nothing else set up. The process
gets free loopback ports, a folder of its own (removed at stop) and its log in
that folder; :attr:`JanusProcess.exited` is set the moment it dies, whatever
killed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import replace
from pathlib import Path

import structlog

from .config import JanusOptions, write_configuration

__all__ = ["JanusMissing", "JanusProcess", "JanusStartFailed", "janus_binary"]

log = structlog.get_logger(__name__)

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
START_ATTEMPTS = 3
PR_SET_PDEATHSIG = 1


class JanusMissing(RuntimeError):
    """Debian's ``janus`` is not installed: the Janus backend cannot run here."""


class JanusStartFailed(RuntimeError):
    """Janus exited or never listened while starting."""


def janus_binary() -> str:
    found = shutil.which("janus") or (
        "/usr/bin/janus" if os.path.exists("/usr/bin/janus") else None
    )
    if found is None:
        raise JanusMissing("the janus binary is missing: apt-get install janus (Debian's 1.1.2)")
    return found


def _die_with_parent() -> None:
    """In the child before exec: Linux kills Janus when the node that started it dies,
    so a SIGKILLed node never leaves a private Janus behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the node's stop path still ends it


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class JanusProcess:
    """One Janus instance this node owns."""

    def __init__(self, options: JanusOptions, *, root: Path | None = None) -> None:
        self._options = options
        self._root_given = root
        self._root: Path | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.exited = asyncio.Event()
        self.returncode: int | None = None
        self.url = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._root / "janus.log" if self._root is not None else None

    async def start(self) -> str:
        """Start Janus on a free loopback port; its WebSocket URL once it listens."""
        binary = janus_binary()
        last: Exception | None = None
        for _ in range(START_ATTEMPTS):  # a free port can be taken before Janus binds it
            try:
                return await self._start_once(binary)
            except JanusStartFailed as exc:
                last = exc
                await self._cleanup()
        raise JanusStartFailed(f"Janus did not start: {last}")

    async def _start_once(self, binary: str) -> str:
        options = replace(self._options, ws_port=free_port(self._options.ws_host))
        self._root = self._root_given or Path(tempfile.mkdtemp(prefix="cloudbranch-janus-"))
        layout = write_configuration(options, self._root)
        self.exited = asyncio.Event()
        with (self._root / "janus.log").open("wb") as output:
            self._process = await asyncio.create_subprocess_exec(
                binary,
                "--configs-folder",
                str(layout.configs),
                "--config",
                str(layout.main),
                "--disable-colors",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped by pid, never by name
                preexec_fn=_die_with_parent,
            )
        self._watcher = asyncio.create_task(self._watch(self._process), name="janus-watch")
        self.url = f"ws://{options.ws_host}:{options.ws_port}/"
        await self._wait_listening(options.ws_host, options.ws_port)
        log.info("janus.started", pid=self._process.pid, url=self.url)
        return self.url

    async def _wait_listening(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if self.exited.is_set():
                raise JanusStartFailed(f"exited with {self.returncode}: {self._tail()}")
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise JanusStartFailed(f"not listening on {host}:{port} after {START_TIMEOUT_S} s")

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        self.returncode = await process.wait()
        self.exited.set()
        log.warning("janus.exited", pid=process.pid, returncode=self.returncode)

    def _tail(self) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return path.read_bytes()[-600:].decode(errors="replace")

    async def stop(self) -> None:
        """Stop Janus (SIGTERM, then SIGKILL) and remove its folder; safe twice."""
        await self._cleanup()

    async def _cleanup(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self._root is not None and self._root_given is None:
            shutil.rmtree(self._root, ignore_errors=True)
        self._root = None
