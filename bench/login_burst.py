"""What a burst of wrong-password logins costs everyone else, through a real server process.

60 concurrent desk logins with wrong passwords, while ``/healthz`` is sampled every
20 ms; the floor is ``/healthz`` on the same idle server in the same run. Two
servers, one after the other:

- ``hashing``: throttle limits set high, so every attempt reaches argon2; only
  the hashing bound (two verifications at a time, off the event loop) protects
  the loop;
- ``default``: the shipped throttle (5 failures a minute per account): attempts
  past the budget are answered 429 without hashing (a concurrent burst may pass
  one attempt per extra hashing slot before the count catches up).

    .venv/bin/python bench/login_burst.py [--logins 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.harness import prepare_template  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with session.get(base + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("server did not start")


async def healthz_ms(session: aiohttp.ClientSession, base: str) -> float:
    started = time.perf_counter()
    async with session.get(base + "/healthz") as response:
        await response.read()
    return (time.perf_counter() - started) * 1000


async def run(name: str, database_url: str, logins: int, env_extra: dict[str, str]) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDBRANCH_")},
        "CLOUDBRANCH_DEV_MODE": "1",
        "CLOUDBRANCH_DATABASE_URL": database_url,
        "CLOUDBRANCH_LOG_LEVEL": "ERROR",
        **env_extra,
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        str(port),
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, base)
            floor = [await healthz_ms(session, base) for _ in range(200)]

            async def login(i: int) -> int:
                body = {"username": "chen.li", "password": f"wrong-{i}"}
                async with session.post(base + "/api/v1/desk/login", json=body) as response:
                    await response.read()
                    return response.status

            started = time.perf_counter()
            burst = asyncio.gather(*(login(i) for i in range(logins)))
            loaded: list[float] = []
            while not burst.done():
                loaded.append(await healthz_ms(session, base))
                await asyncio.sleep(0.02)
            statuses = Counter(await burst)
            took = time.perf_counter() - started
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
    f50, f99 = statistics.median(floor), pct(floor, 0.99)
    l50, l99 = statistics.median(loaded), pct(loaded, 0.99)
    print(
        f"{name:8s} {logins} logins in {took:.2f} s, answers {dict(statuses)}; "
        f"/healthz p50 {l50:.1f} ms, p99 {l99:.1f} ms (n={len(loaded)}); "
        f"floor p50 {f50:.1f} ms, p99 {f99:.1f} ms; ratio p50 {l50 / f50:.2f}x, "
        f"p99 {l99 / f99:.2f}x"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (
            (
                "hashing",
                {
                    "CLOUDBRANCH_LOGIN_ACCOUNT_LIMITS": "100000/minute",
                    "CLOUDBRANCH_LOGIN_ADDRESS_LIMITS": "100000/minute",
                },
            ),
            ("default", {}),
        ):
            url = f"sqlite+aiosqlite:///{tmp}/{name}.db"
            await prepare_template(url)
            await run(name, url, args.logins, extra)
    print("(no target: these figures are for information)")


if __name__ == "__main__":
    asyncio.run(main())
