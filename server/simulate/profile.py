"""The simulation profile: a small YAML file describing one day at the branch.

Arrivals are counts per half hour per dialect; times of day are local "HH:MM".
Validated with pydantic, so a mistake is refused with the field that is wrong.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.routing.model import PriorityClass, RoutingPolicy

HALF_HOUR_S = 1800.0


def clock_seconds(text: str) -> float:
    """Seconds since midnight of ``"HH:MM"`` (``"24:00"`` allowed)."""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"not a time of day HH:MM: {text!r}")
    value = int(hours) * 3600 + int(minutes) * 60
    if int(minutes) >= 60 or value > 24 * 3600:
        raise ValueError(f"not a time of day HH:MM: {text!r}")
    return float(value)


def clock_text(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Strict):
    """A duration in seconds: ``exponential`` (mean), ``lognormal`` (mean and sd),
    or ``fixed`` (always the mean)."""

    distribution: Literal["exponential", "lognormal", "fixed"] = "exponential"
    mean_s: float = Field(ge=0)
    sd_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _lognormal_needs_sd(self) -> Distribution:
        if self.distribution != "fixed" and self.mean_s <= 0:
            raise ValueError(f"a {self.distribution} distribution needs a positive mean_s")
        if self.distribution == "lognormal" and self.sd_s is None:
            raise ValueError("a lognormal distribution needs sd_s")
        return self

    def sample(self, rng: random.Random) -> float:
        if self.distribution == "fixed":
            return self.mean_s
        if self.distribution == "exponential":
            return rng.expovariate(1.0 / self.mean_s)
        assert self.sd_s is not None
        sigma2 = math.log(1.0 + (self.sd_s / self.mean_s) ** 2)
        return rng.lognormvariate(math.log(self.mean_s) - sigma2 / 2, math.sqrt(sigma2))


class ServiceLevel(_Strict):
    """The goal: ``goal`` of calls answered within ``target_s``."""

    target_s: float = Field(default=60.0, gt=0)
    goal: float = Field(default=0.8, gt=0, lt=1)


class Callbacks(_Strict):
    """A customer told to expect a wait of ``threshold_s`` or more takes a callback
    with this probability; a callback keeps its place and is never abandoned."""

    threshold_s: float = Field(default=300.0, ge=0)
    accept_probability: float = Field(default=0.0, ge=0, le=1)


class Desk(_Strict):
    """How specialists answer offers."""

    accept_delay: Distribution = Distribution(distribution="fixed", mean_s=3.0)
    miss_probability: float = Field(default=0.0, ge=0, lt=1)
    # After going away for repeated misses, a specialist comes back this much later.
    away_return_s: float = Field(default=120.0, ge=0)


class Specialist(_Strict):
    id: str = Field(min_length=1, max_length=64)
    dialects: dict[str, int]
    shift: str = "08:00-20:00"

    @field_validator("dialects")
    @classmethod
    def _proficiency(cls, value: dict[str, int]) -> dict[str, int]:
        for dialect, level in value.items():
            if not 1 <= level <= 5:
                raise ValueError(f"proficiency of {dialect} must be 1-5, got {level}")
        return value

    @field_validator("shift")
    @classmethod
    def _shift(cls, value: str) -> str:
        start, sep, end = value.partition("-")
        if not sep or clock_seconds(start) >= clock_seconds(end):
            raise ValueError(f"shift must be HH:MM-HH:MM, start before end: {value!r}")
        return value

    @property
    def shift_seconds(self) -> tuple[float, float]:
        start, _, end = self.shift.partition("-")
        return clock_seconds(start), clock_seconds(end)


class Profile(_Strict):
    name: str = "day"
    start: str = "08:00"
    seed: int = 1
    service_level: ServiceLevel = ServiceLevel()
    # Per dialect, with "default" for the others.
    handle_time: dict[str, Distribution]
    wrap_up: Distribution = Distribution(distribution="fixed", mean_s=30.0)
    # None: nobody hangs up while waiting.
    patience: Distribution | None = None
    priorities: dict[PriorityClass, float] = {PriorityClass.NORMAL: 1.0}
    callbacks: Callbacks = Callbacks()
    desk: Desk = Desk()
    routing: dict[str, float] = {}
    # Calls per half hour, from ``start``, per dialect.
    arrivals: dict[str, list[float]]
    # "poisson": random arrival times in each half hour (a Poisson process of the
    # given rate); "even": evenly spaced.
    arrival_process: Literal["poisson", "even"] = "poisson"
    roster: list[Specialist]

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        clock_seconds(value)
        return value

    @field_validator("arrivals")
    @classmethod
    def _arrivals(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        if not value or not any(value.values()):
            raise ValueError("arrivals must list calls per half hour for at least one dialect")
        if any(count < 0 for counts in value.values() for count in counts):
            raise ValueError("arrival counts must not be negative")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if "default" not in self.handle_time and set(self.arrivals) - set(self.handle_time):
            raise ValueError("handle_time needs a 'default' or an entry for every dialect")
        if abs(sum(self.priorities.values()) - 1.0) > 1e-6:
            raise ValueError("priorities must add up to 1")
        if self.end_s > 24 * 3600:
            raise ValueError("the arrivals run past midnight: at most 48 half hours from 00:00")
        if len({s.id for s in self.roster}) != len(self.roster):
            raise ValueError("roster ids must be unique")
        self.routing_policy()  # unknown or invalid routing fields fail here
        return self

    @property
    def start_s(self) -> float:
        return clock_seconds(self.start)

    @property
    def intervals(self) -> int:
        return max(len(counts) for counts in self.arrivals.values())

    @property
    def end_s(self) -> float:
        return self.start_s + self.intervals * HALF_HOUR_S

    def handle_time_for(self, dialect: str) -> Distribution:
        return self.handle_time.get(dialect) or self.handle_time["default"]

    def routing_policy(self) -> RoutingPolicy:
        unknown = set(self.routing) - set(RoutingPolicy.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown routing fields: {sorted(unknown)}")
        values = {
            k: (int(v) if isinstance(getattr(RoutingPolicy, k), int) else v)
            for k, v in self.routing.items()
        }
        return RoutingPolicy(**values)  # type: ignore[arg-type]

    def interval_start(self, index: int) -> float:
        return self.start_s + index * HALF_HOUR_S

    def interval_label(self, index: int) -> str:
        return clock_text(self.interval_start(index))


def load_profile(path: Path) -> Profile:
    """Read and validate a YAML profile; ``ValueError`` names what is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read profile {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"profile {path} must be a mapping")
    return Profile.model_validate(document)
