"""The whole labelled suite, in two parts reported separately.

- ``tuning``: the original scenarios plus ``scenarios/tuning/``, which the
  language features were developed against;
- ``held_out``: ``scenarios/held_out/``, each file written before the engine
  changes it exercises and not used to tune them (``cases_2.yaml`` also covers
  video integrity, the counter's new kinds and contact-change takeovers;
  ``cases_3.yaml`` is told mostly without the textbook words; ``cases_4.yaml``
  covers every operation kind in new words, its first-run figures in its
  header). Its figures are
  also reported per file, since each batch was unseen when it was written.

Per part: detection (scams decided review or stronger), false alarms
(legitimate operations decided above warn) and typology named (scams whose
warning names one of the labelled typologies). The figures go to the terminal
summary; the issue's targets are asserted where the text says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from risk import Decision, RiskEngine
from risk.codec import decode_case

MIN_CASES = 150
MIN_INNOCENT_LEGIT = 40
TARGET_DETECTION = 0.97
TARGET_FALSE_ALARMS = 0.03
TARGET_NAMED = 0.95
#: the suite-wide release criterion for false alarms (as for the original scenarios)
MAX_FALSE_ALARMS_OVERALL = 0.05
PHRASINGS = {"paraphrase", "typo", "pinyin", "mixed", "no_statement", "negation", "traditional"}


@dataclass
class Figures:
    scams: int = 0
    detected: int = 0
    legit: int = 0
    alarms: int = 0
    labelled: int = 0
    named: int = 0
    missed: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)

    @property
    def detection(self) -> float:
        return self.detected / self.scams

    @property
    def false_alarm_rate(self) -> float:
        return self.alarms / self.legit

    @property
    def named_rate(self) -> float:
        return self.named / self.labelled

    def lines(self, part: str) -> list[str]:
        return [
            f"[{part}] {self.scams + self.legit} cases: detection {self.detected}/{self.scams} = "
            f"{self.detection:.1%}; false alarms {self.alarms}/{self.legit} = "
            f"{self.false_alarm_rate:.1%}; typology named {self.named}/{self.labelled} = "
            f"{self.named_rate:.1%}",
            f"[{part}]   missed: {', '.join(self.missed) or 'none'}",
            f"[{part}]   false alarms: {', '.join(self.false_alarms) or 'none'}",
            f"[{part}]   not named: {', '.join(self.unnamed) or 'none'}",
        ]


def _labels(raw: dict[str, Any]) -> list[str]:
    want = raw.get("typology")
    if want is None:
        return []
    return [want] if isinstance(want, str) else list(want)


def measure(suite: list[dict[str, Any]], engine: RiskEngine) -> dict[str, Figures]:
    """Figures per part, and for the held-out part also per file (``held_out/…``)."""
    parts: dict[str, Figures] = {}
    typologies = engine.ruleset.features.typologies
    for raw in suite:
        case = decode_case(raw)
        result = engine.evaluate(case.operation, case.profile, case.session, case.lists, case.now)
        tallies = [parts.setdefault(raw["part"], Figures())]
        if raw["part"] == "held_out":
            tallies.append(parts.setdefault(raw["_file"], Figures()))
        for fig in tallies:
            _tally(fig, raw, case.label, case.id, result, typologies)
    return parts


def _tally(
    fig: Figures,
    raw: dict[str, Any],
    label: str,
    case_id: str,
    result: Any,
    typologies: Any,
) -> None:
    if label == "scam":
        fig.scams += 1
        if result.decision >= Decision.REVIEW:
            fig.detected += 1
        else:
            fig.missed.append(f"{case_id} ({result.decision.value})")
        wanted = _labels(raw)
        if wanted:
            fig.labelled += 1
            named = result.typology
            warning = " ".join(r.customer_text.get("en", "") for r in result.reasons)
            warning_zh = "".join(r.customer_text.get("zh", "") for r in result.reasons)
            shown = (
                named in wanted
                and result.decision > Decision.ALLOW
                and "scam" in warning
                and "骗局" in warning_zh
                and named is not None
                and typologies[named].warning["en"] in warning
            )
            if shown:
                fig.named += 1
            else:
                fig.unnamed.append(f"{case_id} ({named})")
    else:
        fig.legit += 1
        if result.decision > Decision.WARN:
            fig.alarms += 1
            fig.false_alarms.append(f"{case_id} ({result.decision.value})")


def test_suite_is_large_varied_and_well_formed(suite: list[dict[str, Any]]) -> None:
    ids = [s["id"] for s in suite]
    assert len(suite) >= MIN_CASES
    assert len(set(ids)) == len(ids), "case ids must be unique"
    assert {s["part"] for s in suite} == {"tuning", "held_out"}
    innocent = [s for s in suite if s["label"] == "legit" and s.get("innocent_scam_words")]
    assert len(innocent) >= MIN_INNOCENT_LEGIT
    phrasings = {p for s in suite for p in s.get("phrasing", [])}
    assert phrasings >= PHRASINGS
    known = set(RiskEngine().ruleset.features.typologies)
    for s in suite:
        decode_case(s)
        assert set(_labels(s)) <= known, s["id"]
        if s["part"] == "held_out" and s["label"] == "scam":
            assert _labels(s), f"{s['id']}: held-out scams are labelled with their typology"
    kinds = {s["operation"]["kind"] for s in suite}
    assert kinds >= {
        "transfer",
        "limit_change",
        "balance_inquiry",
        "password_reset",
        "card_activation",
        "time_deposit",
    }


@pytest.fixture(scope="module")
def figures(suite: list[dict[str, Any]]) -> dict[str, Figures]:
    return measure(suite, RiskEngine())


def test_figures_per_part(figures: dict[str, Figures], report_figures: list[str]) -> None:
    lines = [
        f"targets on each part: detection >= {TARGET_DETECTION:.0%}, false alarms <= "
        f"{TARGET_FALSE_ALARMS:.0%}, typology named >= {TARGET_NAMED:.0%}"
    ]
    for part in ("tuning", "held_out"):
        fig = figures[part]
        lines += fig.lines(part)
        met = {
            "detection": fig.detection >= TARGET_DETECTION,
            "false alarms": fig.false_alarm_rate <= TARGET_FALSE_ALARMS,
            "typology named": fig.named_rate >= TARGET_NAMED,
        }
        lines.append(
            f"[{part}]   " + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in met.items())
        )
    lines += _held_out_batches(figures)
    report_figures.extend(lines)
    print("\n".join(lines))


def _held_out_batches(figures: dict[str, Figures]) -> list[str]:
    """The held-out part's figures per file: each batch was unseen when written."""
    lines: list[str] = []
    for name, fig in sorted(figures.items()):
        if name.startswith("held_out/"):
            lines += fig.lines(name)
    return lines


def test_tuning_part_meets_the_targets(figures: dict[str, Figures]) -> None:
    fig = figures["tuning"]
    assert fig.detection >= TARGET_DETECTION, fig.lines("tuning")
    assert fig.false_alarm_rate <= TARGET_FALSE_ALARMS, fig.lines("tuning")
    assert fig.named_rate >= TARGET_NAMED, fig.lines("tuning")


def test_held_out_part_meets_the_targets(figures: dict[str, Figures]) -> None:
    """Detection, false-alarm and naming targets on cases nobody tuned against."""
    fig = figures["held_out"]
    assert fig.detection >= TARGET_DETECTION, fig.lines("held_out")
    assert fig.false_alarm_rate <= TARGET_FALSE_ALARMS, fig.lines("held_out")
    assert fig.named_rate >= TARGET_NAMED, fig.lines("held_out")


def test_false_alarms_suite_wide(figures: dict[str, Figures]) -> None:
    parts = [figures["tuning"], figures["held_out"]]  # (the per-file figures repeat these)
    legit = sum(f.legit for f in parts)
    alarms = sum(f.alarms for f in parts)
    assert alarms / legit <= MAX_FALSE_ALARMS_OVERALL, [f.false_alarms for f in parts]
