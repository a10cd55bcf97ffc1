"""Amounts in words on the server side: the same capital numerals the app's
amount.js writes (the table of tests/browser/test_pages_static.py, whose one
grouped input, "1,234.5", is a form only the app accepts)."""

from __future__ import annotations

import pytest

from server.banking.amount_words import chinese_amount, english_amount

CHINESE = {
    "50000.00": "伍万元整",
    "20000.00": "贰万元整",
    "0.00": "零元整",
    "0.05": "伍分",
    "0.50": "伍角",
    "10": "壹拾元整",
    "105": "壹佰零伍元整",
    "100005.30": "壹拾万零伍元叁角",
    "1000.05": "壹仟元零伍分",
    "10010000": "壹仟零壹万元整",
    "10000001": "壹仟万零壹元整",
    "123456789.12": "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元壹角贰分",
    "300000000": "叁亿元整",
}


@pytest.mark.parametrize(("amount", "words"), CHINESE.items())
def test_capital_numerals_match_the_apps(amount: str, words: str) -> None:
    assert chinese_amount(amount) == words


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("50000.00", "fifty thousand yuan"),
        ("20350.05", "twenty thousand three hundred fifty yuan and five fen"),
        ("0.00", "zero yuan"),
        ("1001001.10", "one million one thousand one yuan and ten fen"),
    ],
)
def test_english_words(amount: str, words: str) -> None:
    assert english_amount(amount) == words


@pytest.mark.parametrize("amount", ["-1.00", "10000000000000000"])
def test_amounts_out_of_range_are_refused(amount: str) -> None:
    with pytest.raises(ValueError):
        chinese_amount(amount)
