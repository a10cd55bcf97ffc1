"""Rule conditions: parsed from YAML once, compiled to Python once.

A condition is a mapping; all its entries must hold. An entry is either a
combinator or a feature test::

    all: [cond, ...]          every condition holds
    any: [cond, ...]          at least one holds
    not: cond                 the condition does not hold
    <feature>: <scalar>       the feature equals the scalar
    <feature>: {op: value}    comparison(s); several ops must all hold

Operators: ``eq ne lt le gt ge`` (numbers; ``eq ne`` also for bool and str),
``in not_in`` (str feature, list of strings), ``contains contains_any``
(set feature). A number may be written ``$name`` to use a ruleset parameter.

Evaluation is three-valued (Kleene): a test on an UNKNOWN feature is
*unknown* (``None``); ``all`` is False as soon as one child is False, ``any``
is True as soon as one child is True, otherwise unknown propagates. So a
missing fact only matters when it could change the rule's outcome. Inside an
``all``, cheap feature tests run before dear ones (``Feature.cost``); the
result does not depend on the order.

A condition is parsed into a small tree (:class:`Compare`, :class:`AllOf`,
:class:`AnyOf`, :class:`Not`). :func:`to_closure` turns one tree into a
function (the reference semantics); :func:`compile_rules` turns all the rules
of one operation kind into a single generated function, which is what the
engine runs, because one call per evaluation is much cheaper in Python than
one call per rule and per test.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from risk.features import FEATURES, UNKNOWN, FeatureContext

#: A compiled condition: True, False, or None for unknown.
Condition = Callable[[FeatureContext], bool | None]
#: All the rules of one operation kind: (indices of rules that hold, indices of
#: rules that are undecided because a fact they hinge on is unknown).
RulesEvaluator = Callable[[FeatureContext], tuple[list[int], list[int]]]


class ConditionError(ValueError):
    """A condition that cannot be compiled; the message says where and why."""


# ------------------------------------------------------------------ the tree


@dataclass(frozen=True)
class Compare:
    """``feature <op> operand``; ``op`` is one of the operator names above."""

    feature: str
    op: str
    operand: Any


@dataclass(frozen=True)
class AllOf:
    """Every part holds."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part holds."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The part does not hold."""

    part: Node


Node = Compare | AllOf | AnyOf | Not

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "in": lambda value, members: value in members,
    "not_in": lambda value, members: value not in members,
    "intersects": lambda value, members: not members.isdisjoint(value),
}
_SOURCE: dict[str, str] = {
    "eq": "{v} == {c}",
    "ne": "{v} != {c}",
    "lt": "{v} < {c}",
    "le": "{v} <= {c}",
    "gt": "{v} > {c}",
    "ge": "{v} >= {c}",
    "in": "{v} in {c}",
    "not_in": "{v} not in {c}",
    "intersects": "not {c}.isdisjoint({v})",
}


# ------------------------------------------------------------------ parsing


def parse_condition(
    spec: object,
    *,
    params: Mapping[str, float],
    typologies: frozenset[str],
    features_used: set[str],
    path: str = "when",
) -> Node:
    """Validate ``spec`` (the parsed YAML) and return its tree.

    Every feature read is added to ``features_used``; errors name the path
    inside the condition, e.g. ``when.all[1].amount_cny.ge``.
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ConditionError(f"{path}: must be a non-empty mapping, got {spec!r}")
    parts: list[Node] = []
    for key, value in spec.items():
        key = str(key)
        sub = f"{path}.{key}"
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ConditionError(f"{sub}: must be a non-empty list of conditions")
            children = tuple(
                parse_condition(
                    v,
                    params=params,
                    typologies=typologies,
                    features_used=features_used,
                    path=f"{sub}[{i}]",
                )
                for i, v in enumerate(value)
            )
            parts.append(AllOf(children) if key == "all" else AnyOf(children))
        elif key == "not":
            child = parse_condition(
                value, params=params, typologies=typologies, features_used=features_used, path=sub
            )
            parts.append(Not(child))
        elif key in FEATURES:
            features_used.add(key)
            tests = value if isinstance(value, Mapping) else {"eq": value}
            if not tests:
                raise ConditionError(f"{sub}: needs at least one operator")
            for op_name, operand in tests.items():
                parts.append(
                    _test(key, str(op_name), operand, params, typologies, f"{sub}.{op_name}")
                )
        else:
            known = ", ".join(sorted(FEATURES))
            raise ConditionError(f"{sub}: unknown feature {key!r} (known features: {known})")
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _test(
    name: str,
    op_name: str,
    operand: object,
    params: Mapping[str, float],
    typologies: frozenset[str],
    path: str,
) -> Compare:
    kind = FEATURES[name].kind
    if kind == "number":
        if op_name not in ("eq", "ne", "lt", "le", "gt", "ge"):
            raise ConditionError(f"{path}: operator {op_name!r} does not apply to a number")
        return Compare(name, op_name, _number(operand, params, path))
    if kind == "bool":
        if op_name not in ("eq", "ne") or not isinstance(operand, bool):
            raise ConditionError(f"{path}: a yes/no feature takes eq/ne with true or false")
        return Compare(name, op_name, operand)
    if kind == "str":
        if op_name in ("eq", "ne"):
            if not isinstance(operand, str):
                raise ConditionError(f"{path}: needs a string, got {operand!r}")
            return Compare(name, op_name, operand)
        if op_name in ("in", "not_in"):
            if not isinstance(operand, list) or not all(isinstance(v, str) for v in operand):
                raise ConditionError(f"{path}: needs a list of strings, got {operand!r}")
            return Compare(name, op_name, frozenset(operand))
        raise ConditionError(f"{path}: operator {op_name!r} does not apply to a string")
    if kind == "set":
        wanted = [operand] if op_name == "contains" else operand
        if op_name not in ("contains", "contains_any") or not isinstance(wanted, list):
            raise ConditionError(f"{path}: a set feature takes contains or contains_any")
        members = FEATURES[name].members
        allowed, what = (typologies, "typology") if members is None else (members, "value")
        for item in wanted:
            if item not in allowed:
                raise ConditionError(
                    f"{path}: unknown {what} {item!r} (defined: {', '.join(sorted(allowed))})"
                )
        return Compare(name, "intersects", frozenset(str(w) for w in wanted))
    raise ConditionError(f"{path}: feature {name!r} cannot be tested")  # pragma: no cover


def _number(operand: object, params: Mapping[str, float], path: str) -> float:
    if isinstance(operand, str) and operand.startswith("$"):
        if operand[1:] not in params:
            raise ConditionError(f"{path}: unknown parameter {operand!r}")
        return params[operand[1:]]
    if isinstance(operand, bool) or not isinstance(operand, int | float):
        raise ConditionError(f"{path}: needs a number or $parameter, got {operand!r}")
    return float(operand)


def _ordered(parts: Sequence[Node]) -> list[Node]:
    """Feature tests first, cheapest first; then nested conditions in their order."""
    tests = [p for p in parts if isinstance(p, Compare)]
    tests.sort(key=lambda t: FEATURES[t.feature].cost)
    return [*tests, *(p for p in parts if not isinstance(p, Compare))]


# ------------------------------------------------------------------ closures


def to_closure(node: Node) -> Condition:
    """The reference evaluator of one condition tree."""
    if isinstance(node, Compare):
        fn, name, operand = _COMPARE[node.op], node.feature, node.operand

        def test(ctx: FeatureContext) -> bool | None:
            value = ctx.get(name)
            return None if value is UNKNOWN else bool(fn(value, operand))

        return test
    if isinstance(node, AllOf):
        children = [to_closure(p) for p in _ordered(node.parts)]

        def all_(ctx: FeatureContext) -> bool | None:
            unknown = False
            for child in children:
                result = child(ctx)
                if result is False:
                    return False
                unknown = unknown or result is None
            return None if unknown else True

        return all_
    if isinstance(node, AnyOf):
        options = [to_closure(p) for p in node.parts]

        def any_(ctx: FeatureContext) -> bool | None:
            unknown = False
            for option in options:
                result = option(ctx)
                if result is True:
                    return True
                unknown = unknown or result is None
            return None if unknown else False

        return any_
    inner = to_closure(node.part)

    def not_(ctx: FeatureContext) -> bool | None:
        result = inner(ctx)
        return None if result is None else not result

    return not_


# ------------------------------------------------------------------ generated code


class _Writer:
    """Emits the body of one generated evaluator."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, object] = {}
        #: feature name -> local variable
        self.locals: dict[str, str] = {}
        #: features whose local is sure to be loaded wherever code is emitted next
        self.loaded: set[str] = set()
        self._names = 0

    def local(self, feature: str) -> str:
        """The local variable that holds ``feature`` in the generated function."""
        name = self.locals.get(feature)
        if name is None:
            name = self.locals[feature] = f"f{len(self.locals)}"
        return name

    def name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def constant(self, value: object) -> str:
        name = self.name("c")
        self.constants[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def load(self, feature: str, indent: int) -> str:
        """Code that makes sure ``feature``'s local holds its value; the local's name.

        Each feature is kept in a local once read: a local is several times
        cheaper than a dict lookup, and a value never changes within one evaluation.
        """
        local = self.local(feature)
        if feature in self.loaded:
            return local
        self.emit(indent, f"if {local} is NOT_YET:")
        self.emit(indent + 1, f"{local} = values.get({feature!r}, NOT_YET)")
        self.emit(indent + 1, f"if {local} is NOT_YET:")
        self.emit(indent + 2, f"{local} = compute({feature!r})")
        return local

    def part(self, part: Node, indent: int) -> tuple[str, str]:
        """Code for one part of an ``all``: (expression true unless the part is
        False, expression true when it is unknown)."""
        if isinstance(part, Compare):
            local = self.load(part.feature, indent)
            test = _SOURCE[part.op].format(v=local, c=self.constant(part.operand))
            return f"{local} is UNKNOWN or {test}", f"{local} is UNKNOWN"
        sub = self.name("t")
        self.node(part, sub, indent)
        return f"{sub} is not False", f"{sub} is None"

    def rule(self, node: Node, index: int, indent: int) -> None:
        """Code that appends ``index`` to ``held`` or ``undecided``.

        A rule is mostly an ``all`` of feature tests, and most rules fail their
        first test: nested ``if`` statements stop there at the cost of one
        comparison, and only a rule that is not False looks at what was unknown.
        """
        if isinstance(node, Compare):
            node = AllOf((node,))
        if not isinstance(node, AllOf):
            target = self.name("r")
            self.node(node, target, indent)
            self.emit(indent, f"if {target} is True:")
            self.emit(indent + 1, f"held.append({index})")
            self.emit(indent, f"elif {target} is None:")
            self.emit(indent + 1, f"undecided.append({index})")
            return
        unknowns: list[str] = []
        depth = indent
        for number, part in enumerate(_ordered(node.parts)):
            not_false, unknown = self.part(part, depth)
            if number == 0 and indent == 1 and isinstance(part, Compare):
                # every evaluation runs a rule's first test: from here on the
                # feature's local is known to hold its value, and needs no check
                self.loaded.add(part.feature)
            unknowns.append(unknown)
            self.emit(depth, f"if {not_false}:")
            depth += 1
        self.emit(depth, f"if {' or '.join(unknowns)}:")
        self.emit(depth + 1, f"undecided.append({index})")
        self.emit(depth, "else:")
        self.emit(depth + 1, f"held.append({index})")

    def node(self, node: Node, target: str, indent: int) -> None:
        """Code that sets ``target`` to True, False or None for ``node``."""
        if isinstance(node, Not):
            inner = self.name("t")
            self.node(node.part, inner, indent)
            self.emit(indent, f"{target} = None if {inner} is None else not {inner}")
            return
        if isinstance(node, Compare):
            node = AllOf((node,))
        is_all = isinstance(node, AllOf)
        parts = _ordered(node.parts) if is_all else list(node.parts)
        # One pass through a `while True` loop, so `break` can stop early.
        self.emit(indent, f"{target} = {'True' if is_all else 'False'}")
        self.emit(indent, "while True:")
        body = indent + 1
        for part in parts:
            if isinstance(part, Compare) and is_all:
                local = self.load(part.feature, body)
                test = _SOURCE[part.op].format(v=local, c=self.constant(part.operand))
                self.emit(body, f"if {local} is UNKNOWN:")
                self.emit(body + 1, f"{target} = None")
                self.emit(body, f"elif not ({test}):")
                self.emit(body + 1, f"{target} = False")
                self.emit(body + 1, "break")
                continue
            sub = self.name("t")
            self.node(part, sub, body)
            stop = "False" if is_all else "True"
            self.emit(body, f"if {sub} is {stop}:")
            self.emit(body + 1, f"{target} = {stop}")
            self.emit(body + 1, "break")
            self.emit(body, f"if {sub} is None:")
            self.emit(body + 1, f"{target} = None")
        self.emit(body, "break")


def compile_rules(conditions: Sequence[Node], label: str = "rules") -> RulesEvaluator:
    """One function evaluating every condition in order.

    It returns the indices of the conditions that hold and of those that are
    undecided; a condition's outcome is the same as :func:`to_closure` gives.
    """
    writer = _Writer()
    for index, node in enumerate(conditions):
        writer.rule(node, index, 1)
    # The constants are bound as defaults: locals, cheaper to read than globals.
    bound = ", ".join(f"{name}={name}" for name in ("NOT_YET", "UNKNOWN", *writer.constants))
    source = "\n".join(
        [
            f"def evaluate(ctx, *, {bound}):",
            "    values = ctx.values",
            "    compute = ctx.compute",
            "    held = []",
            "    undecided = []",
            *(f"    {local} = NOT_YET" for local in writer.locals.values()),
            *writer.lines,
            "    return held, undecided",
        ]
    )
    # Nothing from the rule file is pasted into the source as text: feature names
    # are keys of the feature registry and operands are bound as named constants.
    namespace: dict[str, object] = {"NOT_YET": _NOT_YET, "UNKNOWN": UNKNOWN, **writer.constants}
    exec(compile(source, f"<ruleset {label}>", "exec"), namespace)
    evaluate = namespace["evaluate"]
    assert callable(evaluate)
    return evaluate


_NOT_YET = object()
