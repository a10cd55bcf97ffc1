"""The statement model and the folding table: regenerated from their sources and
compared with the committed files; evaluated on the held-out corpus; never able
to lower a decision."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from risk import Decision, RiskEngine, load_default_ruleset
from risk.codec import decode_case
from risk.language.fold import fold
from risk.language.model import StatementModel
from risk.training import train_statements, variants


def test_committed_weights_are_what_training_produces() -> None:
    """Bound: training is full-batch gradient descent in pure Python: about 20 s on this
    2-core machine under load (184 statements, 300 epochs), up to 80 s when it is swamped."""
    corpus = train_statements.load_corpus()
    expected = train_statements.render(train_statements.train(corpus))
    assert train_statements.TARGET.read_text(encoding="utf-8") == expected, (
        "stale weights: run python -m risk.training.train_statements"
    )


def test_committed_folding_table_is_what_the_generator_produces() -> None:
    expected = variants.render(variants.generate())
    assert variants.TARGET.read_text(encoding="utf-8") == expected
    assert fold("帳戶凍結，百萬保障") == "账户冻结,百万保障"


def test_held_out_corpus_evaluation(report_figures: list[str]) -> None:
    corpus = train_statements.load_corpus()
    model = StatementModel.from_json(json.loads(train_statements.TARGET.read_text("utf-8")))
    held = {text for text, _ in corpus.held_out}
    assert held and not held & {text for text, _ in corpus.train}
    result = train_statements.evaluate(model, corpus)
    report_figures.extend(result.lines())
    majority = max(
        sum(1 for _, label in corpus.held_out if label == c) for c in corpus.classes
    ) / len(corpus.held_out)
    assert result.correct_class / result.total > majority  # better than always guessing
    assert result.legit_flagged <= 1


def test_the_model_only_adds_evidence(suite: list[dict[str, Any]]) -> None:
    """Without the model no decision is higher: it informs, never lowers a floor."""
    with_model = load_default_ruleset()
    reader = with_model.features.reader
    assert reader.model is not None
    without = replace(
        with_model, features=replace(with_model.features, reader=replace(reader, model=None))
    )
    a, b = RiskEngine(with_model), RiskEngine(without)
    for raw in suite:
        case = decode_case(raw)
        args = (case.operation, case.profile, case.session, case.lists, case.now)
        assert a.evaluate(*args).decision >= b.evaluate(*args).decision, case.id


def test_the_reason_shows_what_the_model_read(kit: Any) -> None:
    engine = RiskEngine()
    session = kit.session(stated_reason="客服说我开通了百万保障，不关闭就每月扣费")
    result = engine.evaluate(kit.to_stranger("20000"), kit.profile(), session, kit.lists(), kit.now)
    assert result.decision >= Decision.REVIEW and result.typology == "protection_plan"
    named = result.reasons[0]
    assert named.code == "scam_named"
    assert "百万保障" in named.specialist_text  # the phrases that counted
    assert "Statement model" in named.specialist_text
    assert "protection plan" in named.customer_text["en"]


def test_one_pass_matching_finds_exactly_the_weighted_n_grams() -> None:
    """The model's automaton finds the same n-grams as building every one and keeping
    those with weights (the corpus, the scenarios' statements and mixed texts)."""
    from risk.language.lexicon import tokenise
    from risk.language.model import features, load_packaged_model

    model = load_packaged_model()
    assert model is not None
    corpus = train_statements.load_corpus()
    texts = [t for t, _ in (*corpus.train, *corpus.held_out)] + [
        "群里老师说这个 platform 稳赚, touzi 三个月翻倍",
        "“安全账户”、保证金。the police said so",
        "給女兒的生活費（37）",
    ]
    for text in texts:
        folded = fold(text)
        tokens = tokenise(folded)
        expected = {f for f in features(folded, tokens) if f in model.weights}
        assert set(model._matched(folded, tokens)) == expected, text
