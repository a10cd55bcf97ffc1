"""``cloudbranch simulate``: a day at the branch, simulated or driven live.

    cloudbranch simulate [PROFILE.yaml] [--days N] [--out DIR]
    cloudbranch simulate [PROFILE.yaml] --live http://127.0.0.1:8080 [--speed 60]
                         [--max-calls 40] [--max-seconds 120]

Writes ``report.txt``, ``report.json``, ``intervals.csv`` and ``day.png`` to
``--out`` (default ``var/simulate``) and prints the report.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TextIO

from .profile import Profile, clock_text, load_profile
from .report import Report, build_report, render_text, write_csv

DEFAULT_PROFILE = "weekday.yaml"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="cloudbranch simulate",
        description="Simulate a day at the branch with the real routing model, or drive a "
        "running server (--live), and report service level, waits, abandonment, occupancy, "
        "callbacks and the staffing Erlang C says each half hour needs.",
    )
    parser.add_argument("profile", nargs="?", help=f"YAML profile (default: {DEFAULT_PROFILE})")
    parser.add_argument("--days", type=int, default=1, help="independent days to pool (1-50)")
    parser.add_argument("--out", type=Path, default=Path("var/simulate"), help="report folder")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    live = parser.add_argument_group("live load test (a running server in development mode)")
    live.add_argument("--live", metavar="URL", help="base URL of a server on loopback")
    live.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    live.add_argument("--max-calls", type=int, default=40, help="stop after this many calls")
    live.add_argument("--max-seconds", type=float, default=120.0, help="stop after this long")
    args = parser.parse_args(list(argv))
    if not 1 <= args.days <= 50:
        parser.error("--days must be between 1 and 50")
    try:
        profile = _profile(args.profile)
    except ValueError as exc:
        print(f"cloudbranch simulate: {exc}", file=sys.stderr)
        return 2
    progress = ProgressPrinter(sys.stderr, profile)
    if args.live:
        from .live import LiveLimits, LiveRefused, drive

        try:
            limits = LiveLimits(args.speed, args.max_calls, args.max_seconds)
            result = asyncio.run(drive(args.live, profile, limits, progress.live))
        except (LiveRefused, ValueError) as exc:
            print(f"cloudbranch simulate --live: {exc}", file=sys.stderr)
            return 2
        report = build_report(profile, result.calls, result.desks, mode="live")
        for error in result.errors[:5]:
            print(f"live: a simulated party failed: {error}", file=sys.stderr)
        if result.skipped:
            print(
                f"live: {result.skipped} arrivals skipped (every demo customer busy)",
                file=sys.stderr,
            )
    else:
        from .engine import simulate

        sim = asyncio.run(simulate(profile, progress.simulated, days=args.days))
        report = build_report(profile, sim.calls, sim.desks, days=args.days, events=sim.events)
    progress.finish()
    write_outputs(report, args.out, plot=not args.no_plot)
    print(render_text(report), end="")
    print(f"written to {args.out}/", file=sys.stderr)
    return 0


def _profile(path: str | None) -> Profile:
    if path:
        return load_profile(Path(path))
    packaged = resources.files("server.simulate.profiles") / DEFAULT_PROFILE
    with resources.as_file(packaged) as file:
        return load_profile(file)


def write_outputs(report: Report, out: Path, plot: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.txt", out / "report.json", out / "intervals.csv"]
    written[0].write_text(render_text(report), encoding="utf-8")
    written[1].write_text(report.to_json(), encoding="utf-8")
    write_csv(report, written[2])
    if plot:
        from .plots import plot_day

        written.append(plot_day(report, out / "day.png"))
    return written


class ProgressPrinter:
    """A bar on a terminal; a plain line per simulated two hours otherwise."""

    def __init__(self, stream: TextIO, profile: Profile) -> None:
        self.stream = stream
        self.profile = profile
        self.tty = stream.isatty()
        self._last_line = -1
        self._drawn = False

    def simulated(self, done: float, total: float) -> None:
        fraction = done / total if total else 1.0
        day_s = self.profile.end_s - self.profile.start_s
        day = min(int(done // day_s), max(0, int(total // day_s) - 1))
        clock = clock_text(self.profile.start_s + (done - day * day_s))
        self._show(fraction, f"simulated to {clock}, day {day + 1}")

    def live(self, fraction: float, text: str) -> None:
        self._show(fraction, text)

    def _show(self, fraction: float, text: str) -> None:
        if self.tty:
            filled = int(30 * fraction)
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {100 * fraction:3.0f}% {text}  "
            )
            self.stream.flush()
            self._drawn = True
            return
        step = int(fraction * 10)
        if step != self._last_line:
            self._last_line = step
            print(f"simulate: {100 * fraction:3.0f}% {text}", file=self.stream, flush=True)

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
