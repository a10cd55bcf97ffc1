"""The statement model: a small linear (softmax) classifier over character n-grams.

Features are Chinese character bigrams and trigrams (within runs of Chinese
text) and English words and word pairs, each counted once. Each class (a
typology, or ``legit``) has a bias and sparse weights; the probabilities are
the softmax of the sums. The weights are trained at build time from the labelled
corpus in ``risk/corpus/statements.yaml`` by ``risk.training.train_statements``
and committed as ``statement_model.json``; the engine only adds numbers.

The verdict is evidence, never a decision: the engine adds a bounded share of
it to the typology's story and shows the n-grams that contributed most.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from risk.language.lexicon import Token

_CJK_RUN = re.compile(r"[^\x00-\x7f\s,.;:!?、。“”‘’()]+")
_TOP = 3


def features(folded: str, tokens: Sequence[Token]) -> set[str]:
    """The n-grams of a folded statement (each once)."""
    found: set[str] = set()
    for run in _CJK_RUN.findall(folded):
        n = len(run)
        for i in range(n - 1):
            found.add(run[i : i + 2])
            if i + 3 <= n:
                found.add(run[i : i + 3])
    words = [t.text for t in tokens]
    for i, w in enumerate(words):
        if len(w) > 1:
            found.add(w)
        if i + 1 < len(words):
            found.add(f"{w} {words[i + 1]}")
    return found


@dataclass(frozen=True)
class ModelVerdict:
    """The most likely scam class, its probability, and why."""

    best: str
    best_probability: float
    #: the statement's n-grams that carry weights (any class)
    grams: tuple[str, ...] = ()
    #: the model's weights, to explain the verdict when asked
    _weights: Mapping[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    _best_index: int = -1

    @property
    def contributions(self) -> tuple[tuple[str, float], ...]:
        """(n-gram, weight for ``best``) of the statement's n-grams that carry weight
        for ``best`` (worked out only when an explanation asks)."""
        best, weights = self._best_index, self._weights
        return tuple((f, w) for f in self.grams for i, w in weights[f] if i == best)

    @property
    def top_phrases(self) -> tuple[str, ...]:
        """The n-grams that pushed ``best`` up most, strongest first."""
        pushed = sorted((fw for fw in self.contributions if fw[1] > 0), key=lambda fw: -fw[1])
        return tuple(f for f, _ in pushed[:_TOP])


@dataclass(frozen=True)
class StatementModel:
    """Trained weights, ready to score statements."""

    classes: tuple[str, ...]
    bias: tuple[float, ...]
    weights: Mapping[str, tuple[tuple[int, float], ...]]
    legit: int
    #: the same weights as one number per class (zeros included), so that a
    #: statement's scores are column sums made in C rather than a Python loop;
    #: always made from ``weights``, never given
    dense: Mapping[str, tuple[float, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        width = len(self.classes)
        dense: dict[str, tuple[float, ...]] = {}
        for gram, entries in self.weights.items():
            row = [0.0] * width
            for index, w in entries:
                row[index] += w
            dense[gram] = tuple(row)
        object.__setattr__(self, "dense", dense)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> StatementModel:
        classes = tuple(str(c) for c in data["classes"])  # type: ignore[attr-defined]
        bias = tuple(float(b) for b in data["bias"])  # type: ignore[attr-defined]
        raw = data["weights"]
        assert isinstance(raw, Mapping)
        weights = {
            str(f): tuple((int(i), float(w)) for i, w in entries) for f, entries in raw.items()
        }
        return cls(classes, bias, weights, classes.index("legit"))

    def _matched(self, folded: str, tokens: Sequence[Token]) -> dict[str, None]:
        """The statement's n-grams that carry weights (each once, in order): the
        same as filtering :func:`features`, without building every n-gram first."""
        weights = self.weights
        seen: dict[str, None] = {}
        for run in _CJK_RUN.findall(folded):
            n = len(run)
            for i in range(n - 1):
                gram = run[i : i + 2]
                if gram in weights:
                    seen[gram] = None
            for i in range(n - 2):
                gram = run[i : i + 3]
                if gram in weights:
                    seen[gram] = None
        if tokens:
            words = [t.text for t in tokens]
            last = len(words) - 1
            for i, w in enumerate(words):
                if len(w) > 1 and w in weights:
                    seen[w] = None
                if i < last:
                    pair = f"{w} {words[i + 1]}"
                    if pair in weights:
                        seen[pair] = None
        return seen

    def judge(self, folded: str, tokens: Sequence[Token]) -> ModelVerdict | None:
        """The verdict on one statement; None when no known n-gram occurs."""
        seen = self._matched(folded, tokens)
        if not seen:
            return None
        dense = self.dense
        # sum(column, bias) adds in the same order as bias + w1 + w2 + ... (the
        # zeros change nothing), so the scores are exactly the sparse ones
        scores = list(map(sum, zip(*[dense[gram] for gram in seen], strict=True), self.bias))
        legit = self.legit
        best = 0 if legit != 0 else 1
        for i, value in enumerate(scores):
            if i != legit and value > scores[best]:
                best = i
        top = max(scores)
        exp = math.exp
        total = 0.0
        for value in scores:
            total += exp(value - top)
        probability = exp(scores[best] - top) / total
        return ModelVerdict(self.classes[best], probability, tuple(seen), self.weights, best)


@cache
def load_packaged_model() -> StatementModel | None:
    """The committed model, or None if the package has none."""
    try:
        raw = resources.files("risk").joinpath("language/statement_model.json").read_text("utf-8")
    except (FileNotFoundError, OSError):
        return None
    return StatementModel.from_json(json.loads(raw))


def iter_classes(model: StatementModel) -> Iterable[str]:
    """The scam classes the model knows (everything but ``legit``)."""
    return (c for c in model.classes if c != "legit")
