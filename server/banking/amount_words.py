"""Amounts in words, as the customer's confirmation screen says them.

Chinese capital numerals as on a counter slip ("50000.00" -> "伍万元整"; the
app's ``server/web/app/amount.js`` writes the same), and English words
("50000.00" -> "fifty thousand yuan"). Pure functions of a decimal string.
"""

from __future__ import annotations

from decimal import Decimal

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("", "拾", "佰", "仟")
_GROUPS = ("", "万", "亿", "万亿")

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))


def _split(amount: Decimal | str) -> tuple[int, int]:
    value = Decimal(str(amount)).quantize(Decimal("0.01"))
    if value < 0 or value >= Decimal(10) ** 16:
        raise ValueError(f"amount out of range: {amount}")
    whole = int(value)
    return whole, int((value - whole) * 100)


def chinese_amount(amount: Decimal | str) -> str:
    """Capital numerals: ``"100005.30"`` -> ``"壹拾万零伍元叁角"``."""
    whole, cents = _split(amount)
    words = ""
    if whole:
        digits = str(whole)
        groups = [digits[max(0, end - 4) : end] for end in range(len(digits), 0, -4)][::-1]
        zero = False  # a zero after a non-zero digit, written before the next one
        for position, group in enumerate(groups):
            part = ""
            for i, char in enumerate(group.rjust(4, "0")):
                digit = int(char)
                if digit == 0:
                    if words or part:
                        zero = True
                    continue
                if zero:
                    part += "零"
                zero = False
                part += _DIGITS[digit] + _PLACES[3 - i]
            if part:
                words += part + _GROUPS[len(groups) - 1 - position]
        words += "元"
    jiao, fen = divmod(cents, 10)
    if not jiao and not fen:
        return (words or "零元") + "整"
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif words:
        words += "零"
    if fen:
        words += _DIGITS[fen] + "分"
    return words


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        parts.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    elif rest:
        parts.append(_ONES[rest])
    return " ".join(parts)


def _english_number(n: int) -> str:
    if n == 0:
        return "zero"
    parts = []
    for scale, name in _SCALES:
        if n >= scale:
            count, n = divmod(n, scale)
            parts.append(f"{_english_number(count)} {name}")
    if n:
        parts.append(_below_thousand(n))
    return " ".join(parts)


def english_amount(amount: Decimal | str) -> str:
    """``"20350.05"`` -> ``"twenty thousand three hundred fifty yuan and five fen"``."""
    whole, cents = _split(amount)
    text = f"{_english_number(whole)} yuan"
    if cents:
        text += f" and {_english_number(cents)} fen"
    return text
