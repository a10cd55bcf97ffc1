"""Figures of a simulated (or live-driven) day, per dialect and half hour, and the
staffing Erlang C says each half hour needs.

Service level: calls answered within the target, over the calls offered less
those abandoned within the target (a customer who hangs up in the first seconds
says nothing about the service); a call still waiting at the end counts as not
answered in time. Mean wait is over answered calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from server.routing.model import LadderStep

from . import erlang
from .engine import CallRecord, DeskRecord
from .profile import HALF_HOUR_S, Profile, clock_text

DIALECT_NAMES = {"cmn": "Mandarin", "wuu": "Shanghainese", "yue": "Cantonese"}
# Dialects whose customers most need a speaker: a roster without one is called out.
WATCHED_DIALECTS = ("wuu", "yue")


def dialect_name(code: str) -> str:
    name = DIALECT_NAMES.get(code)
    return f"{code} ({name})" if name else code


@dataclass
class IntervalFigures:
    dialect: str
    interval: int
    start: str
    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    answered_by_speaker: int = 0
    abandoned: int = 0
    abandoned_in_time: int = 0
    callbacks: int = 0
    unanswered: int = 0
    total_wait_s: float = 0.0
    # Staffing for this dialect's calls alone (Erlang C with the profile's AHT).
    needed: int = 0
    rostered: int = 0
    erlang_service_level: float | None = None
    erlang_mean_wait_s: float | None = None

    @property
    def service_level(self) -> float | None:
        base = self.offered - self.abandoned_in_time
        return self.answered_in_time / base if base > 0 else None

    @property
    def mean_wait_s(self) -> float | None:
        return self.total_wait_s / self.answered if self.answered else None

    @property
    def abandonment(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.update(
            service_level=self.service_level,
            mean_wait_s=self.mean_wait_s,
            abandonment=self.abandonment,
        )
        return data


@dataclass
class SpecialistFigures:
    specialist_id: str
    dialects: dict[str, int]
    shift: str
    handled: int
    misses: int
    logged_in_s: float
    occupancy: float


@dataclass
class Report:
    profile_name: str
    mode: str  # "simulated" or "live"
    days: int
    target_s: float
    goal: float
    intervals: list[IntervalFigures]
    specialists: list[SpecialistFigures]
    warnings: list[str] = field(default_factory=list)
    events: int = 0

    def dialects(self) -> list[str]:
        return sorted({f.dialect for f in self.intervals})

    def series(self, dialect: str) -> list[IntervalFigures]:
        return sorted((f for f in self.intervals if f.dialect == dialect), key=lambda f: f.interval)

    def totals(self, dialect: str) -> IntervalFigures:
        total = IntervalFigures(dialect, -1, "day")
        for f in self.series(dialect):
            for name in (
                "offered",
                "answered",
                "answered_in_time",
                "answered_by_speaker",
                "abandoned",
                "abandoned_in_time",
                "callbacks",
                "unanswered",
                "total_wait_s",
            ):
                setattr(total, name, getattr(total, name) + getattr(f, name))
        return total

    def to_json(self) -> str:
        return json.dumps(
            {
                "profile": self.profile_name,
                "mode": self.mode,
                "days": self.days,
                "service_level_target_s": self.target_s,
                "service_level_goal": self.goal,
                "totals": {d: self.totals(d).as_dict() for d in self.dialects()},
                "intervals": [f.as_dict() for f in self.intervals],
                "specialists": [asdict(s) for s in self.specialists],
                "warnings": self.warnings,
            },
            ensure_ascii=False,
            indent=2,
        )


def build_report(
    profile: Profile,
    calls: Iterable[CallRecord],
    desks: Sequence[DeskRecord],
    *,
    days: int = 1,
    mode: str = "simulated",
    events: int = 0,
) -> Report:
    target = profile.service_level.target_s
    policy = profile.routing_policy()
    figures: dict[tuple[str, int], IntervalFigures] = {}
    for dialect, counts in profile.arrivals.items():
        for index in range(len(counts)):
            figures[(dialect, index)] = IntervalFigures(
                dialect, index, profile.interval_label(index)
            )
    for call in calls:
        f = figures.setdefault(
            (call.dialect, call.interval),
            IntervalFigures(call.dialect, call.interval, profile.interval_label(call.interval)),
        )
        f.offered += 1
        f.callbacks += call.callback
        wait = call.wait_s
        if call.answered_at is not None and wait is not None:
            f.answered += 1
            f.total_wait_s += wait
            f.answered_in_time += wait <= target
            f.answered_by_speaker += call.step is LadderStep.DIALECT
        elif call.abandoned_at is not None and wait is not None:
            f.abandoned += 1
            f.abandoned_in_time += wait <= target
        else:
            f.unanswered += 1
    for f in figures.values():
        _staff(f, profile, policy.proficiency_threshold, days)
    report = Report(
        profile.name,
        mode,
        days,
        target,
        profile.service_level.goal,
        sorted(figures.values(), key=lambda f: (f.dialect, f.interval)),
        _specialists(desks),
        events=events,
    )
    report.warnings = roster_warnings(report)
    return report


def _staff(f: IntervalFigures, profile: Profile, threshold: int, days: int) -> None:
    """Erlang C for this half hour's expected calls of this dialect."""
    counts = profile.arrivals.get(f.dialect, [])
    expected = counts[f.interval] if f.interval < len(counts) else f.offered / days
    rate = expected / HALF_HOUR_S
    handle = profile.handle_time_for(f.dialect).mean_s + profile.wrap_up.mean_s
    target, goal = profile.service_level.target_s, profile.service_level.goal
    f.needed = erlang.agents_needed(rate, handle, target, goal)
    start = profile.interval_start(f.interval)
    f.rostered = sum(
        1
        for s in profile.roster
        if s.dialects.get(f.dialect, 0) >= threshold
        and s.shift_seconds[0] <= start
        and start + HALF_HOUR_S <= s.shift_seconds[1]
    )
    if rate > 0:
        f.erlang_service_level = erlang.service_level(f.rostered, rate, handle, target)
        wait = erlang.mean_wait(f.rostered, rate, handle)
        f.erlang_mean_wait_s = None if wait == float("inf") else wait


def _specialists(desks: Sequence[DeskRecord]) -> list[SpecialistFigures]:
    pooled: dict[str, SpecialistFigures] = {}
    busy: dict[str, float] = {}
    for desk in desks:
        spec = desk.specialist
        entry = pooled.setdefault(
            spec.id, SpecialistFigures(spec.id, dict(spec.dialects), spec.shift, 0, 0, 0.0, 0.0)
        )
        entry.handled += desk.handled
        entry.misses += desk.misses
        entry.logged_in_s += desk.logged_in_s
        busy[spec.id] = busy.get(spec.id, 0.0) + desk.talk_s + desk.wrap_up_s
    for entry in pooled.values():
        entry.occupancy = busy[entry.specialist_id] / entry.logged_in_s if entry.logged_in_s else 0
    return sorted(pooled.values(), key=lambda s: s.specialist_id)


def roster_warnings(report: Report) -> list[str]:
    """Half hours with calls expected and no rostered speaker of a watched dialect."""
    warnings = []
    for dialect in report.dialects():
        if dialect not in WATCHED_DIALECTS:
            continue
        gaps = [f for f in report.series(dialect) if f.rostered == 0 and f.needed > 0]
        for run in _runs(gaps):
            first, last = run[0], run[-1]
            end = clock_text(_clock(last.start) + HALF_HOUR_S)
            warnings.append(
                f"no {dialect_name(dialect)} speaker rostered {first.start}-{end}, "
                f"with {sum(f.offered for f in run) / report.days:.0f} such calls expected: "
                "they wait out the dialect step, then go to any specialist"
            )
    return warnings


def _clock(text: str) -> float:
    hours, minutes = text.split(":")
    return int(hours) * 3600.0 + int(minutes) * 60.0


def _runs(items: list[IntervalFigures]) -> list[list[IntervalFigures]]:
    runs: list[list[IntervalFigures]] = []
    for item in items:
        if runs and runs[-1][-1].interval == item.interval - 1:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _pct(value: float | None) -> str:
    return "   -" if value is None else f"{100 * value:3.0f}%"


def _secs(value: float | None) -> str:
    return "     -" if value is None else f"{value:6.1f}"


def render_text(report: Report) -> str:
    """The report as plain text for a terminal or a file."""
    lines = [
        f"Cloud Branch capacity report: {report.profile_name} ({report.mode}, "
        f"{report.days} day{'s' if report.days != 1 else ''}"
        + (f", {report.events} events" if report.events else "")
        + ")",
        f"Service level: answered within {report.target_s:.0f} s, goal {100 * report.goal:.0f}%",
        "",
        "Day totals",
        f"  {'dialect':20} {'calls/day':>9} {'SL':>5} {'wait s':>7} {'aband':>6} "
        f"{'by speaker':>10} {'callbacks':>9} {'unanswered':>10}   (all days)",
    ]
    for dialect in report.dialects():
        t = report.totals(dialect)
        by_speaker = t.answered_by_speaker / t.answered if t.answered else None
        lines.append(
            f"  {dialect_name(dialect):20} {t.offered / report.days:9.1f} "
            f"{_pct(t.service_level):>5} {_secs(t.mean_wait_s):>7} {_pct(t.abandonment):>6} "
            f"{_pct(by_speaker):>10} "
            f"{t.callbacks:9d} {t.unanswered:10d}"
        )
    for dialect in report.dialects():
        lines += [
            "",
            f"{dialect_name(dialect)} per half hour "
            "(needed: Erlang C for this dialect alone; rostered: speakers on shift)",
            f"  {'start':5} {'calls':>6} {'SL':>5} {'wait s':>7} {'aband':>6} "
            f"{'needed':>6} {'rostered':>8} {'Erlang SL':>9}",
        ]
        for f in report.series(dialect):
            if f.offered == 0 and f.needed == 0:
                continue
            calls = f.offered / report.days
            lines.append(
                f"  {f.start:5} {calls:6.1f} {_pct(f.service_level):>5} {_secs(f.mean_wait_s):>7} "
                f"{_pct(f.abandonment):>6} {f.needed:6d} {f.rostered:8d} "
                f"{_pct(f.erlang_service_level):>9}"
            )
    lines += [
        "",
        "Specialists",
        f"  {'id':12} {'shift':11} {'calls':>6} {'misses':>6} {'occupancy':>9}",
    ]
    for s in report.specialists:
        lines.append(
            f"  {s.specialist_id:12} {s.shift:11} {s.handled:6d} {s.misses:6d} "
            f"{_pct(s.occupancy):>9}"
        )
    if report.warnings:
        lines += ["", "Warnings"] + [f"  ! {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def write_csv(report: Report, path: Path) -> None:
    import csv

    columns = [
        "dialect", "start", "offered", "answered", "service_level", "mean_wait_s",
        "abandoned", "abandonment", "callbacks", "unanswered", "needed", "rostered",
        "erlang_service_level", "erlang_mean_wait_s",
    ]  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        for f in report.intervals:
            writer.writerow(f.as_dict())
