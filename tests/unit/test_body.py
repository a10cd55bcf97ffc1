"""Finding text in a request body that cannot be stored or sent back."""

from __future__ import annotations

from server.http.body import unstorable_text


def test_clean_bodies_pass() -> None:
    assert unstorable_text({}) is None
    assert unstorable_text({"intent": "转账 😀", "n": [1, 2.5, None, True, {"k": "v"}]}) is None


def test_nul_and_lone_surrogates_are_found_with_their_place() -> None:
    assert unstorable_text({"intent": "a\x00b"}) == "intent"
    assert unstorable_text({"params": {"payee": {"name": "x\ud800"}}}) == "params.payee.name"
    assert unstorable_text({"answers": ["ok", "no\x00"]}) == "answers.1"
    assert unstorable_text({"tags": {"\x00": 1}}) == "tags"
    assert unstorable_text({"\udfff": 1}) == "body"
    assert unstorable_text("\x00") == "body"


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    deep: object = "\x00"
    for _ in range(50_000):
        deep = [deep]
    assert unstorable_text({"a": deep}) is not None
