"""Train the statement model from the labelled corpus and write its weights.

Multinomial logistic (softmax) regression over the n-grams of
:func:`risk.language.model.features`, fitted by full-batch gradient descent
with an L2 penalty: deterministic (no random order), pure Python, seconds.
Every ``held_out_every``-th statement of each class is left out of training;
:func:`evaluate` reports the model on exactly those.

Usage::

    .venv/bin/python -m risk.training.train_statements          # rewrite the weights
    .venv/bin/python -m risk.training.train_statements --check  # exit 1 if they are stale
    .venv/bin/python -m risk.training.train_statements --evaluate
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from risk.language.fold import fold
from risk.language.lexicon import tokenise
from risk.language.model import StatementModel, features

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus" / "statements.yaml"
TARGET = ROOT / "language" / "statement_model.json"
EPOCHS = 300
RATE = 4.0
L2 = 0.0003
PRUNE = 0.05


@dataclass(frozen=True)
class Corpus:
    classes: tuple[str, ...]
    train: tuple[tuple[str, str], ...]
    held_out: tuple[tuple[str, str], ...]


def load_corpus(path: Path = CORPUS) -> Corpus:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    every = int(data["held_out_every"])
    train: list[tuple[str, str]] = []
    held: list[tuple[str, str]] = []
    for label, statements in data["classes"].items():
        for n, text in enumerate(statements, start=1):
            (held if n % every == 0 else train).append((str(text), str(label)))
    return Corpus(tuple(data["classes"]), tuple(train), tuple(held))


def _grams(text: str) -> list[str]:
    folded = fold(text)
    return sorted(features(folded, tokenise(folded)))


def train(corpus: Corpus) -> dict[str, object]:
    """The model as JSON-ready data."""
    classes = corpus.classes
    rows = [(_grams(text), classes.index(label)) for text, label in corpus.train]
    vocab = sorted({g for grams, _ in rows for g in grams})
    index = {g: i for i, g in enumerate(vocab)}
    encoded = [([index[g] for g in grams], label) for grams, label in rows]
    k = len(classes)
    weights = [[0.0] * len(vocab) for _ in range(k)]
    bias = [0.0] * k
    n = len(encoded)
    size = len(vocab)
    for _ in range(EPOCHS):
        grad_w = [[0.0] * size for _ in range(k)]
        grad_b = [0.0] * k
        for feats, label in encoded:
            z = [bias[c] + sum(map(weights[c].__getitem__, feats)) for c in range(k)]
            top = max(z)
            e = [math.exp(v - top) for v in z]
            total = sum(e)
            for c in range(k):
                err = e[c] / total - (1.0 if c == label else 0.0)
                grad_b[c] += err
                row = grad_w[c]
                for f in feats:
                    row[f] += err
        step, decay = RATE / n, 1.0 - RATE * L2
        for c in range(k):
            bias[c] -= step * grad_b[c]
            weights[c] = [w * decay - step * g for w, g in zip(weights[c], grad_w[c], strict=True)]
    sparse: dict[str, list[list[float]]] = {}
    for g, f in index.items():
        entries = [[c, round(weights[c][f], 4)] for c in range(k) if abs(weights[c][f]) >= PRUNE]
        if entries:
            sparse[g] = entries
    return {
        "classes": list(classes),
        "bias": [round(b, 4) for b in bias],
        "weights": dict(sorted(sparse.items())),
        "trained_on": len(encoded),
    }


def render(model: dict[str, object]) -> str:
    return json.dumps(model, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"


@dataclass(frozen=True)
class Evaluation:
    """The model on the held-out statements."""

    total: int
    correct_class: int
    scams: int
    scams_flagged: int
    legit: int
    legit_flagged: int

    def lines(self) -> list[str]:
        return [
            f"statement model, held-out corpus ({self.total} statements): class right "
            f"{self.correct_class}/{self.total} = {self.correct_class / self.total:.1%}",
            f"  scam statements read as some scam: {self.scams_flagged}/{self.scams} = "
            f"{self.scams_flagged / self.scams:.1%}; legit read as a scam: "
            f"{self.legit_flagged}/{self.legit} = {self.legit_flagged / max(self.legit, 1):.1%}",
        ]


def evaluate(model: StatementModel, corpus: Corpus) -> Evaluation:
    correct = scams = scams_flagged = legit = legit_flagged = 0
    for text, label in corpus.held_out:
        folded = fold(text)
        verdict = model.judge(folded, tokenise(folded))
        flagged = verdict is not None and verdict.best_probability >= 0.5
        predicted = verdict.best if flagged and verdict is not None else "legit"
        correct += predicted == label
        if label == "legit":
            legit += 1
            legit_flagged += flagged
        else:
            scams += 1
            scams_flagged += flagged
    return Evaluation(len(corpus.held_out), correct, scams, scams_flagged, legit, legit_flagged)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the committed weights")
    parser.add_argument("--evaluate", action="store_true", help="print the held-out evaluation")
    args = parser.parse_args(argv)
    corpus = load_corpus()
    text = render(train(corpus))
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            stale = f"{TARGET} is stale: run python -m risk.training.train_statements"
            print(stale, file=sys.stderr)
            return 1
        return 0
    if args.evaluate:
        model = StatementModel.from_json(json.loads(text))
        print("\n".join(evaluate(model, corpus).lines()))
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET} ({len(text)} bytes, {len(corpus.train)} statements)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
