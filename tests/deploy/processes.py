"""Real daemons (nginx, coturn) for the deploy tests: started in the foreground as
private instances under a temporary folder, on free loopback ports, and stopped by
their own PID whatever the test's outcome.

A missing binary FAILS the test (``make test`` installs the Debian packages through
``make system-deps``); it is never a skip.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

START_TIMEOUT_S = 20.0


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()),
        None,
    )
    if path is None:
        pytest.fail(
            f"{name} is not installed, but this test needs the real one: "
            f"run `make system-deps` (apt-get install {package})",
            pytrace=False,
        )
    return path


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    """A loopback port free for UDP and for TCP alike: a TURN server listens on both,
    and a port only UDP-free can be a busy machine's TCP port."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


def udp_port_range(size: int) -> tuple[int, int]:
    """A range of ``size`` UDP ports on loopback that are free right now (another
    process may still take one later; a relay server then just uses the next)."""
    for _ in range(50):
        low = random.randrange(40000, 60000 - size)
        if all(_udp_free(port) for port in range(low, low + size)):
            return low, low + size - 1
    raise RuntimeError(f"no {size} free UDP ports in a row on 127.0.0.1")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def daemon(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    ready: Callable[[], bool],
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` (a foreground server) until the block ends; wait for ``ready``."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(list(argv), stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready in {START_TIMEOUT_S} s:\n{_tail(log_path)}")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def tcp_listening(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    return check


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"
