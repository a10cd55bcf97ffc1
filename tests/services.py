#!/usr/bin/env python3
"""Run a command against throwaway Redis and PostgreSQL servers.

Usage::

    python tests/services.py [options] -- COMMAND [ARGS...]

The runner picks free ports on 127.0.0.1, starts a private ``redis-server``
(no persistence) and a private PostgreSQL cluster (``initdb`` + ``pg_ctl``,
trust authentication, durability switched off for speed), waits until both
answer, then runs COMMAND with these variables added to its environment:

    CLOUDBRANCH_TEST_REDIS_URL=redis://127.0.0.1:PORT/0
    CLOUDBRANCH_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres

Whatever happens to COMMAND (success, failure, Ctrl-C, SIGTERM), both servers
are stopped and their temporary directories removed afterwards. The runner
exits with COMMAND's exit code (128+N if COMMAND was killed by signal N).

PostgreSQL refuses to run as root. When the runner itself runs as root (as on
CI), ``initdb`` and ``pg_ctl`` run as the ``postgres`` system user created by
Debian's ``postgresql`` package, and the cluster directory is owned by it.

Binaries: ``redis-server`` is looked up on PATH (override with
``CLOUDBRANCH_REDIS_SERVER``); PostgreSQL's server tools are taken from
``CLOUDBRANCH_PG_BINDIR`` if set, else the newest ``/usr/lib/postgresql/*/bin``
(Debian's layout), else PATH.

Standard library only, so it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

REDIS_ENV = "CLOUDBRANCH_TEST_REDIS_URL"
POSTGRES_ENV = "CLOUDBRANCH_TEST_POSTGRES_URL"
PG_SYSTEM_USER = "postgres"
PG_SUPERUSER = "postgres"

# How long a child command gets to finish on its own after an interrupt before
# it is sent SIGTERM, and how long after SIGTERM before SIGKILL.
INTERRUPT_GRACE_S = 15.0
TERM_GRACE_S = 10.0
# Attempts to start each server, on a new port each time, when its port was
# taken between choosing it and binding it.
PORT_ATTEMPTS = 3


def log(message: str) -> None:
    # Never let a closed stderr (e.g. output piped into `head`) abort the cleanup.
    try:
        print(f"services: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives until exit


class ServiceError(RuntimeError):
    """A service could not be started; the message says which and why."""


class Interrupted(Exception):
    """Raised from the signal handler while no child command is running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# --------------------------------------------------------------------------- helpers


def free_port(taken: set[int]) -> int:
    """Return a TCP port on 127.0.0.1 that is free right now and not in ``taken``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port
    raise ServiceError("could not find a free TCP port on 127.0.0.1")


def tail(path: Path, max_lines: int = 60) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    shown = lines[-max_lines:]
    prefix = (
        [f"... ({len(lines) - len(shown)} earlier lines omitted)"]
        if len(shown) < len(lines)
        else []
    )
    return "\n".join(prefix + shown) or "(log is empty)"


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Poll ``check`` until it returns True; fail after ``timeout`` seconds or if the
    process behind it has died."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if check():
            return
        if not alive():
            raise ServiceError(f"{what} exited before it became ready")
        if time.monotonic() >= deadline:
            raise ServiceError(f"{what} did not become ready within {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl(2) on Linux, loaded up front (never inside a forked child)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _set_parent_death_signal() -> None:
    """In the child, before exec: get SIGTERM if the runner dies, so a runner
    killed with SIGKILL does not leave redis-server behind."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _become_subreaper() -> None:
    """Adopt orphaned descendants: the postmaster that ``pg_ctl`` leaves running
    becomes our child, so it is reaped here when it stops instead of lingering
    as a zombie under an init that reaps lazily."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_children() -> None:
    """Collect every exited child without blocking."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# --------------------------------------------------------------------------- redis


class Redis:
    def __init__(self, port: int, start_timeout: float) -> None:
        self.port = port
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="cloudbranch-redis-"))
        self.log_path = self.dir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = os.environ.get("CLOUDBRANCH_REDIS_SERVER") or shutil.which("redis-server")
        if not binary:
            raise ServiceError(
                "redis-server not found on PATH (Debian: apt-get install redis-server; "
                "`make test` installs it when missing)"
            )
        cmd = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", "",  # log to stdout, which goes to redis.log
        ]  # fmt: skip
        log(f"starting redis-server on 127.0.0.1:{self.port}")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C at the terminal reaches the test command,
                # not the server; the runner stops the server itself afterwards.
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        try:
            wait_until(
                self.ping,
                timeout=self.start_timeout,
                what="redis-server",
                alive=lambda: self.proc is not None and self.proc.poll() is None,
            )
        except ServiceError as exc:
            raise ServiceError(
                f"{exc}\n--- redis log ({self.log_path}) ---\n{tail(self.log_path)}"
            ) from None
        log(f"redis-server ready (pid {self.proc.pid})")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith(b"+PONG")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            log("stopping redis-server")
            proc.terminate()
            try:
                proc.wait(timeout=TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                log("redis-server did not stop on SIGTERM; killing it")
                proc.kill()
                proc.wait()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- postgres


def find_pg_bindir() -> Path:
    override = os.environ.get("CLOUDBRANCH_PG_BINDIR")
    if override:
        for tool in ("initdb", "pg_ctl"):
            if not os.access(Path(override) / tool, os.X_OK):
                raise ServiceError(f"CLOUDBRANCH_PG_BINDIR={override} has no executable {tool}")
        return Path(override)

    def version_key(path: str) -> tuple[int, ...]:
        version = Path(path).parent.name
        return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)

    candidates = [
        str(Path(p).parent)
        for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
        if os.access(Path(p).parent / "pg_ctl", os.X_OK)
    ]
    if candidates:
        return Path(max(candidates, key=version_key))
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    raise ServiceError(
        "PostgreSQL server tools (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin "
        "or on PATH (Debian: apt-get install postgresql; `make test` installs it when "
        "missing; or set CLOUDBRANCH_PG_BINDIR)"
    )


class Postgres:
    def __init__(self, port: int, start_timeout: float) -> None:
        self.port = port
        self.start_timeout = start_timeout
        self.bindir = find_pg_bindir()
        # PostgreSQL will not run as root: drop to the `postgres` system user.
        self.run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.run_as = pwd.getpwnam(PG_SYSTEM_USER)
            except KeyError:
                raise ServiceError(
                    f"running as root, but there is no '{PG_SYSTEM_USER}' system user to run "
                    "PostgreSQL as (Debian's postgresql package creates it)"
                ) from None
        self.dir = Path(tempfile.mkdtemp(prefix="cloudbranch-pg-"))
        if self.run_as is not None:
            os.chown(self.dir, self.run_as.pw_uid, self.run_as.pw_gid)
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{PG_SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        kwargs: dict[str, Any] = {}
        if self.run_as is not None:
            kwargs.update(user=self.run_as.pw_uid, group=self.run_as.pw_gid, extra_groups=[])
            env.update(
                HOME=self.run_as.pw_dir, USER=self.run_as.pw_name, LOGNAME=self.run_as.pw_name
            )
        proc = subprocess.Popen(
            cmd,
            cwd=self.dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Own session: Ctrl-C does not reach the server it spawns (the runner
            # stops it), and an aborted tool can be killed with its helpers.
            start_new_session=True,
            **kwargs,
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
        except BaseException:
            # Timeout or interrupt: kill the tool and whatever it spawned in its
            # session (initdb's bootstrap backend), so nothing keeps writing into
            # the directory that is about to be removed. A postmaster started by
            # pg_ctl has a session of its own and is stopped by stop().
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        return subprocess.CompletedProcess(cmd, proc.returncode, output)

    def _fail(self, message: str, output: str = "") -> NoReturn:
        parts = [message]
        if output.strip():
            parts.append(f"--- output ---\n{output.rstrip()}")
        parts.append(f"--- postgres log ({self.log_path}) ---\n{tail(self.log_path)}")
        raise ServiceError("\n".join(parts))

    def start(self) -> None:
        who = f" as user '{self.run_as.pw_name}'" if self.run_as else ""
        log(f"initdb in {self.data}{who} ({self.bindir})")
        try:
            result = self._run(
                "initdb",
                "-D", str(self.data),
                "--auth=trust",
                "-U", PG_SUPERUSER,
                "-E", "UTF8",
                "--no-locale",
                "--no-sync",
                timeout=self.start_timeout * 2,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            self._fail("initdb timed out", str(exc.output or ""))
        if result.returncode != 0:
            self._fail(f"initdb failed with exit code {result.returncode}", result.stdout)
        self.start_server()

    def start_server(self) -> None:
        """Start the initialised cluster and wait until it answers on TCP (also how
        the fault tests bring a stopped cluster back)."""
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {shlex.quote(str(self.dir))}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        log(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        self.started = True  # from here on, stop() must run even if the start fails
        try:
            result = self._run(
                "pg_ctl", "start",
                "-D", str(self.data),
                "-l", str(self.log_path),
                "-o", options,
                "-w", "-t", str(int(self.start_timeout)),
                timeout=self.start_timeout + 10,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            self._fail("pg_ctl start timed out", str(exc.output or ""))
        if result.returncode != 0:
            self._fail(f"pg_ctl start failed with exit code {result.returncode}", result.stdout)

        # pg_ctl -w already waited for the server; confirm it answers on TCP.
        try:
            wait_until(self.ready, timeout=self.start_timeout, what="PostgreSQL")
        except ServiceError as exc:
            self._fail(str(exc))
        log(f"PostgreSQL ready (pid {self.postmaster_pid()})")

    def ready(self) -> bool:
        isready = self.bindir / "pg_isready"
        if not isready.exists():  # a TCP connect is the next best thing
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return True
            except OSError:
                return False
        cmd = [str(isready), "-q", "-h", "127.0.0.1", "-p", str(self.port),
               "-U", PG_SUPERUSER, "-d", "postgres", "-t", "2"]  # fmt: skip
        try:
            result = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=5, check=False)
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        pid = self.postmaster_pid()
        if pid is None and (self.data / "postmaster.opts").exists():
            # Interrupted while the server was starting: give it a moment to
            # write its pid file, so it can be stopped rather than left behind.
            deadline = time.monotonic() + 3
            while pid is None and time.monotonic() < deadline:
                time.sleep(0.05)
                pid = self.postmaster_pid()
        if pid is None:
            return
        log("stopping PostgreSQL")
        try:
            result = self._run(
                "pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", timeout=40
            )
            ok = result.returncode == 0
            if not ok:
                log(f"pg_ctl stop failed:\n{result.stdout.rstrip()}")
        except subprocess.TimeoutExpired:
            ok = False
        if not ok:
            log(f"killing postmaster {pid}")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            # Backends notice the dead postmaster and exit by themselves shortly.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _pid_alive(pid):
                time.sleep(0.1)

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie that is not our child would still answer; check its state.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


# --------------------------------------------------------------------------- runner


class Runner:
    """Owns the signal handling: before and after the child command runs, a signal
    aborts what the runner is doing (cleanup still runs); while the child runs, the
    runner waits for it to finish and makes sure it does."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.received: int | None = None
        self.cleaning_up = False

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            # A signal ignored on entry (a background job, nohup) stays ignored,
            # for the runner and for the command it runs.
            if signum != signal.SIGTERM and signal.getsignal(signum) is signal.SIG_IGN:
                continue
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.received is None
        self.received = self.received or signum
        if self.cleaning_up:
            return  # finish cleaning up; exit code already decided
        child = self.child
        if child is None:
            raise Interrupted(signum)
        if child.poll() is not None:
            return
        # A terminal Ctrl-C already reached the child (same process group); any
        # other signal, or a repeated one, is passed on explicitly.
        if signum != signal.SIGINT or not first:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    def run_child(self, cmd: Sequence[str], env: dict[str, str]) -> int:
        try:
            self.child = subprocess.Popen(list(cmd), env=env)
        except OSError as exc:
            log(f"cannot run {cmd[0]!r}: {exc}")
            return 127 if isinstance(exc, FileNotFoundError) else 126
        child = self.child
        # Poll rather than block: a signal must be able to start the grace period.
        while self.received is None:
            try:
                returncode = child.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            grace = INTERRUPT_GRACE_S if self.received == signal.SIGINT else TERM_GRACE_S
            returncode = self._wait_or_escalate(child, grace)
        return 128 - returncode if returncode < 0 else returncode

    def _wait_or_escalate(self, child: subprocess.Popen[bytes], grace: float) -> int:
        try:
            return child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log(f"command still running {grace:.0f} s after the interrupt; sending SIGTERM")
            child.terminate()
        try:
            return child.wait(timeout=TERM_GRACE_S)
        except subprocess.TimeoutExpired:
            log("command ignored SIGTERM; killing it")
            child.kill()
            return child.wait()


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    argv = list(argv)
    if "--" in argv:
        split = argv.index("--")
        own, command = argv[:split], argv[split + 1 :]
    else:
        own, command = argv, []
    parser = argparse.ArgumentParser(
        prog="services.py",
        description="Run COMMAND with throwaway Redis and PostgreSQL servers on free local ports.",
        usage="%(prog)s [options] -- COMMAND [ARGS...]",
    )
    parser.add_argument(
        "--start-timeout", type=float, default=30.0, metavar="S",
        help="seconds to wait for each server to answer (default 30)",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the temporary directories (data and logs) for inspection",
    )  # fmt: skip
    args = parser.parse_args(own)
    if not command:
        parser.error("no command given (put it after --)")
    return args, command


def main(argv: Sequence[str]) -> int:
    args, command = parse_args(argv)
    runner = Runner()
    runner.install()
    _become_subreaper()
    taken: set[int] = set()
    services: list[Redis | Postgres] = []
    exit_code = 1

    def start(factory: Callable[[int], Redis | Postgres]) -> Redis | Postgres:
        # A port found free can be taken by someone else before the server binds
        # it (parallel test runs): then try again on another port.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            service = factory(free_port(taken))
            services.append(service)
            try:
                service.start()
                return service
            except ServiceError as exc:
                if attempt == PORT_ATTEMPTS or "already in use" not in str(exc):
                    raise
                log(f"port {service.port} was taken meanwhile; trying another one")
                services.remove(service)
                service.stop()
                service.cleanup()
        raise AssertionError("unreachable")

    try:
        redis = start(lambda port: Redis(port, args.start_timeout))
        postgres = start(lambda port: Postgres(port, args.start_timeout))

        env = dict(os.environ)
        env[REDIS_ENV] = redis.url
        env[POSTGRES_ENV] = postgres.url
        log(f"{REDIS_ENV}={redis.url}")
        log(f"{POSTGRES_ENV}={postgres.url}")
        log(f"running: {' '.join(command)}")
        exit_code = runner.run_child(command, env)
        log(f"command exited with code {exit_code}")
    except ServiceError as exc:
        log(f"ERROR: {exc}")
        exit_code = 1
    except Interrupted as exc:
        log(f"interrupted by {exc} during set-up")
        exit_code = 128 + exc.signum
    finally:
        runner.cleaning_up = True
        for service in reversed(services):
            try:
                service.stop()
            except Exception as exc:  # keep going: the other service must stop too
                log(f"ERROR while stopping {type(service).__name__}: {exc}")
                exit_code = exit_code or 1
        for service in services:
            if args.keep:
                log(f"kept {service.dir}")
            else:
                service.cleanup()
        _reap_children()
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
