"""Rulesets: YAML files validated by pydantic and compiled once.

A ruleset is data: parameters (the large-amount threshold and friends),
decision thresholds, age weights, peer groups for thin histories, typology
keywords, and rules. Each rule has a condition over features (see
``risk.conditions``), points (negative points make it a mitigation), an
optional ``floor`` decision no mitigation can lower, an optional ``group``
(within a group only the strongest fired rule scores, so correlated signals
such as "large in absolute terms" and "large for this customer" do not add
up twice), and the texts shown to the specialist and the customer.

Every problem is reported as ``rule 'code': where: what``; one bad rule
rejects the whole file, so a half-valid ruleset never goes live. The file's
schema is in ``risk.schema``; this module compiles a validated file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import yaml
from pydantic import ValidationError

from risk.conditions import (
    Condition,
    ConditionError,
    Node,
    RulesEvaluator,
    compile_rules,
    parse_condition,
    to_closure,
)
from risk.features import FEATURES, FeatureParams
from risk.habits import Baseline, PeerGroup
from risk.language.model import StatementModel, load_packaged_model
from risk.language.reading import Reader
from risk.model import Decision, Reason
from risk.schema import OPERATION_KINDS, AgeWeight, RulesetSpec, RuleSpec, Thresholds, Typology
from risk.typologies import TypologyInfo

__all__ = [
    "OPERATION_KINDS",
    "RESERVED_CODES",
    "CompiledRule",
    "Ruleset",
    "RulesetError",
    "build_ruleset",
    "load_default_ruleset",
    "load_ruleset",
    "parse_ruleset",
]

#: Codes the engine itself uses; rules may not take them.
RESERVED_CODES = frozenset({"engine_error", "feature_unavailable"})


class RulesetError(ValueError):
    """A ruleset that cannot go live; ``problems`` lists every issue found."""

    def __init__(self, origin: str, problems: list[str]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__(f"invalid ruleset {origin}: " + "; ".join(problems))


# ------------------------------------------------------------------ compiled


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run; ``reason`` is prebuilt when its text has no placeholders."""

    code: str
    applies_to: tuple[str, ...]
    points: int
    floor: Decision | None
    #: rank of ``floor`` (0 without one, the same as allow), for cheap comparisons
    floor_rank: int
    group: str
    snoozable: bool
    #: the parsed condition, and the same as a function (the reference semantics)
    node: Node
    condition: Condition
    features: frozenset[str]
    specialist_template: str
    placeholders: tuple[str, ...]
    reason: Reason

    @property
    def mitigating(self) -> bool:
        """Negative points: the rule lowers the score."""
        return self.points < 0


@dataclass(frozen=True)
class Ruleset:
    """A validated, compiled ruleset. ``version`` is a hash of its content."""

    name: str
    version: str
    thresholds: Thresholds
    age_weights: tuple[AgeWeight, ...]
    params: Mapping[str, float]
    features: FeatureParams
    rules: tuple[CompiledRule, ...]
    rules_by_kind: Mapping[str, tuple[CompiledRule, ...]]
    #: per operation kind, one generated function evaluating its rules in order
    evaluators: Mapping[str, RulesEvaluator]
    spec: RulesetSpec

    @property
    def large_amount_cny(self) -> float:
        """ "Large" in absolute terms (CNY): the fail-safe's floor (``features`` has it)."""
        return self.features.large_amount_cny

    def decision_for(self, score: int) -> Decision:
        """The decision a score alone earns."""
        t = self.thresholds
        if score >= t.block:
            return Decision.BLOCK
        if score >= t.hold:
            return Decision.HOLD
        if score >= t.review:
            return Decision.REVIEW
        if score >= t.warn:
            return Decision.WARN
        return Decision.ALLOW

    def age_factor(self, age: float) -> float:
        """The largest weight whose band the age reaches (1.0 if none)."""
        factor = 1.0
        for w in self.age_weights:
            if age >= w.min_age:
                factor = max(factor, w.factor)
        return factor


def _format_errors(prefix: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(f"{prefix}{where + ': ' if where else ''}{msg}")
    return problems


def _compile_rule(
    spec: RuleSpec, params: Mapping[str, float], typologies: frozenset[str]
) -> CompiledRule:
    used: set[str] = set()
    node = parse_condition(spec.when, params=params, typologies=typologies, features_used=used)
    placeholders = []
    for _, field, _, _ in string.Formatter().parse(spec.specialist_text):
        if field is None:
            continue
        if field not in FEATURES:
            raise ConditionError(f"specialist_text: unknown placeholder {{{field}}}")
        placeholders.append(field)
    customer: Mapping[str, str] = MappingProxyType(
        {"zh": spec.customer_text.zh, "en": spec.customer_text.en} if spec.customer_text else {}
    )
    return CompiledRule(
        code=spec.code,
        applies_to=tuple(spec.applies_to),
        points=spec.points,
        floor=spec.floor,
        floor_rank=spec.floor.rank if spec.floor is not None else 0,
        group=spec.group or spec.code,
        snoozable=spec.snoozable,
        node=node,
        condition=to_closure(node),
        features=frozenset(used),
        specialist_template=spec.specialist_text,
        placeholders=tuple(placeholders),
        reason=Reason(
            code=spec.code,
            specialist_text=spec.specialist_text,
            customer_text=customer,
            questions=tuple(spec.questions),
            points=spec.points,
        ),
    )


def build_ruleset(data: object, origin: str = "<data>") -> Ruleset:
    """Validate and compile parsed YAML; raise :class:`RulesetError` listing every problem."""
    if not isinstance(data, Mapping):
        raise RulesetError(origin, ["the file must be a mapping at the top level"])
    try:
        top = RulesetSpec.model_validate(data)
    except ValidationError as exc:
        raise RulesetError(origin, _format_errors("ruleset: ", exc)) from exc

    problems: list[str] = []
    typologies = frozenset(top.typologies)
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(top.rules):
        label = raw.get("code") if isinstance(raw, Mapping) else None
        prefix = f"rule {label!r}: " if isinstance(label, str) else f"rule #{index + 1}: "
        try:
            spec = RuleSpec.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_format_errors(prefix, exc))
            continue
        if spec.code in RESERVED_CODES:
            problems.append(f"{prefix}code is reserved for the engine")
        if spec.code in seen:
            problems.append(f"{prefix}duplicate code")
        seen.add(spec.code)
        try:
            compiled.append(_compile_rule(spec, top.params, typologies))
        except ConditionError as exc:
            problems.append(f"{prefix}{exc}")
    if problems:
        raise RulesetError(origin, problems)

    canonical = json.dumps(top.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    by_kind: dict[str, list[CompiledRule]] = {}
    for rule in compiled:
        for kind in rule.applies_to:
            by_kind.setdefault(kind, []).append(rule)
    peer_groups = tuple(
        PeerGroup(g.min_age, g.max_age, g.median, g.spread, g.p95, frozenset(g.usual_hours))
        for g in top.peer_groups
    )
    min_spread = top.history.min_spread
    features = FeatureParams(
        fx_to_cny=MappingProxyType({k.upper(): v for k, v in top.fx_to_cny.items()}),
        peer_groups=peer_groups,
        peer_baselines=MappingProxyType(
            {
                g: Baseline(
                    source="peer",
                    median=g.median,
                    spread=max(g.spread, min_spread),
                    p95=max(g.p95, min_spread),
                    usual_hours=g.usual_hours,
                )
                for g in peer_groups
            }
        ),
        min_history_transactions=top.history.min_transactions,
        min_history_days=top.history.min_days,
        min_spread=top.history.min_spread,
        reader=_reader(top, load_packaged_model()),
        typologies=MappingProxyType(
            {name: _typology_info(name, t) for name, t in top.typologies.items()}
        ),
        story_threshold=top.params.get("story_threshold", 1.0),
        name_threshold=top.params.get("name_threshold", 1.0),
        explain_threshold=top.params.get("explain_threshold", 0.5),
        long_known_days=top.params.get("long_known_payee_days", 365.0),
        large_amount_cny=top.params["large_amount_cny"],
    )
    return Ruleset(
        name=top.name,
        version=f"{top.name}@{digest}",
        thresholds=top.thresholds,
        age_weights=tuple(top.age_weights),
        params=MappingProxyType(dict(top.params)),
        features=features,
        rules=tuple(compiled),
        rules_by_kind=MappingProxyType({k: tuple(v) for k, v in by_kind.items()}),
        evaluators=MappingProxyType(
            {
                kind: compile_rules([r.node for r in rules], f"{top.name}/{kind}")
                for kind, rules in by_kind.items()
            }
        ),
        spec=top,
    )


def _reader(top: RulesetSpec, model: StatementModel | None) -> Reader:
    lexicon: dict[str, dict[str, float]] = {}
    for name, t in top.typologies.items():
        phrases = dict.fromkeys([*t.zh, *t.en], 1.0)
        phrases.update(t.cues)
        lexicon[name] = phrases
    roles = frozenset(name for name, t in top.typologies.items() if t.roles)
    return Reader.build(lexicon, roles, model)


def _typology_info(name: str, t: Typology) -> TypologyInfo:
    called = {"zh": t.name.zh, "en": t.name.en} if t.name else {"zh": t.label, "en": t.label}
    warning = (
        {"zh": t.warning.zh, "en": t.warning.en}
        if t.warning
        else {"zh": f"这很像{called['zh']}。", "en": f"This looks like {called['en']}."}
    )
    return TypologyInfo(
        name=name,
        label=t.label,
        called=MappingProxyType(called),
        warning=MappingProxyType(warning),
        questions=tuple(t.questions)
        or ("What exactly was the customer told, by whom, and how did they make contact?",),
        signals=MappingProxyType(dict(t.signals)),
        roles=t.roles,
        family_payee_settles=t.family_payee_settles,
        known_payee_settles=t.known_payee_settles,
    )


#: libyaml's safe loader when PyYAML was built with it (ten times faster)
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_ruleset(text: str, origin: str = "<text>") -> Ruleset:
    """Parse YAML text into a compiled ruleset."""
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise RulesetError(origin, [f"not valid YAML: {exc}"]) from exc
    return build_ruleset(data, origin)


def load_ruleset(source: str | Path) -> Ruleset:
    """Load a ruleset from a file path, or from YAML text.

    A ``Path``, or a ``str`` without a newline, is a file path; a ``str``
    with newlines is YAML text.
    """
    if isinstance(source, Path) or "\n" not in source:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesetError(str(path), [f"cannot read file: {exc.strerror}"]) from exc
        return parse_ruleset(text, str(path))
    return parse_ruleset(source)


def load_default_ruleset() -> Ruleset:
    """The ruleset shipped with the package (``risk/rulesets/default.yaml``)."""
    return build_ruleset(copy.deepcopy(_default_data()), "risk/rulesets/default.yaml")


@cache
def _default_data() -> object:
    """The packaged file, parsed once per process (each ruleset is still built anew)."""
    text = resources.files("risk").joinpath("rulesets/default.yaml").read_text(encoding="utf-8")
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise RulesetError("risk/rulesets/default.yaml", [f"not valid YAML: {exc}"]) from exc
