"""How the engine reads a statement: negation and contrast, who the words are about,
typos, traditional characters, pinyin, and a secrecy phrase that contains a negator."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from risk import Decision, KnownPayee, Operation, RiskEngine
from risk.language.reading import Reading


@pytest.fixture(scope="module")
def engine() -> RiskEngine:
    return RiskEngine()


def read(engine: RiskEngine, text: str) -> Reading:
    return engine.ruleset.features.reader.read(text)


def counted(reading: Reading, discount_family: bool = False) -> set[str]:
    return {t for t, w in reading.cue_weights(discount_family).items() if w >= 1.0}


@pytest.mark.parametrize(
    "text",
    [
        "不是警察让我转的，是给女儿交房租",
        "The hospital, not the police, asked for the deposit",
        "not a safe account or anything like that",
        "我没有被公安调查，只是给孙子转钱",
        "I'm not investing in anything, just paying my daughter back",
        "这是还钱而不是投资",
    ],
)
def test_negated_cues_do_not_count(engine: RiskEngine, text: str) -> None:
    reading = read(engine, text)
    assert any(c.negated for c in reading.cues), reading.cues
    assert not counted(reading), reading.cues


def test_negation_stops_at_the_clause_and_at_a_contrast(engine: RiskEngine) -> None:
    assert "authority_impersonation" in counted(read(engine, "不是我自己要转，是警察让我转的"))
    assert "authority_impersonation" in counted(read(engine, "not my idea, the police told me"))
    # A one-character negator governs only what follows at once.
    reading = read(engine, "客服说我开通了百万保障，不关闭的话每个月都要扣费")
    assert "protection_plan" in counted(reading)


def test_a_negator_inside_a_phrase_is_part_of_it(engine: RiskEngine) -> None:
    assert "family_emergency" in counted(read(engine, "孙子说不要告诉他爸妈"))
    assert "family_emergency" in counted(read(engine, "he said don't tell anyone"))


def test_words_describing_the_family(engine: RiskEngine) -> None:
    reading = read(engine, "我儿子是警察，这是给他结婚用的钱")
    assert "authority_impersonation" in counted(reading)  # until the payee is checked
    assert "authority_impersonation" not in counted(reading, discount_family=True)
    assert reading.relatives == {"son"}
    # Something that happened to a relative is not a description of them.
    arrested = read(engine, "儿子被警察抓了，要交保释金")
    assert "family_emergency" in counted(arrested, discount_family=True)


def test_the_payee_book_decides_who_the_words_are_about(engine: RiskEngine, kit: Any) -> None:
    son = "6222 0210 0001 0404"
    book = (*kit.profile().known_payees, KnownPayee(son, date(2016, 3, 1), "张磊", "family"))
    profile = kit.profile(known_payees=book, balance=Decimal("260000"))
    session = kit.session(stated_reason="我儿子是警察，这是给他结婚用的钱")
    to_son = kit.transfer(amount=Decimal("50000"), payee_account=son, payee_name="张磊")
    assert engine.evaluate(to_son, profile, session, kit.lists(), kit.now).decision <= Decision.WARN
    # The same words with the money going to a new account are not mitigated.
    to_new = kit.to_stranger("50000")
    result = engine.evaluate(to_new, profile, session, kit.lists(), kit.now)
    assert result.decision >= Decision.HOLD and "typology_authority" in result.reason_codes


def test_a_relative_on_a_new_account_is_a_warning_sign(engine: RiskEngine, kit: Any) -> None:
    session = kit.session(stated_reason="给儿子转学费，他说换了一张卡")
    result = engine.evaluate(kit.to_stranger("30000"), kit.profile(), session, kit.lists(), kit.now)
    assert "relative_on_new_account" in result.reason_codes
    assert result.typology == "family_emergency"


@pytest.mark.parametrize(
    ("text", "typology"),
    [
        ("the polise said my acount is frozen", "authority_impersonation"),
        ("a prosecuter called me", "authority_impersonation"),
        ("警察說我的帳戶涉嫌洗錢", "authority_impersonation"),
        ("jingcha shuo wo she an le", "authority_impersonation"),
        ("they said move it to the anquan zhanghu", "safe_account"),
        ("客服讓我開屏幕共享", "remote_control"),
    ],
)
def test_typos_traditional_characters_and_pinyin(
    engine: RiskEngine, text: str, typology: str
) -> None:
    assert typology in counted(read(engine, text)), read(engine, text).cues


def test_a_slip_at_the_last_letter_is_another_word(engine: RiskEngine) -> None:
    assert not counted(read(engine, "my insurance policy premium"))


def test_innocent_contexts_weigh_against(engine: RiskEngine) -> None:
    assert not counted(read(engine, "a surprise for my grandson's birthday, don't tell him"))
    assert not counted(read(engine, "孙子考得好，比中奖还高兴"))


@pytest.mark.parametrize(
    "text",
    [
        "听说冒充警察的骗子很多，我不会上当",
        "my neighbour warned me about fake police officers on video calls",
    ],
)
def test_a_fraud_named_as_such_is_not_the_story(engine: RiskEngine, text: str) -> None:
    reading = read(engine, text)
    assert reading.cues and all(c.negated for c in reading.cues), reading.cues
    assert not counted(reading)


def test_a_fraud_named_elsewhere_does_not_hide_the_story(engine: RiskEngine) -> None:
    # The awareness word governs what follows it, not a later clause told as fact.
    reading = read(engine, "我知道有冒充的，但这个警察说我的账户涉嫌洗钱")
    assert "authority_impersonation" in counted(reading)


def test_family_words_for_an_operation_that_pays_no_one(engine: RiskEngine, kit: Any) -> None:
    session = kit.session(stated_reason="my son is a detective and told me to check my balance")
    inquiry = engine.evaluate(
        Operation(kind="balance_inquiry"), kit.profile(), session, kit.lists(), kit.now
    )
    assert inquiry.decision <= Decision.WARN, inquiry.reason_codes
    told = kit.session(stated_reason="the detective told me to check my balance for him")
    asked = engine.evaluate(
        Operation(kind="balance_inquiry"), kit.profile(), told, kit.lists(), kit.now
    )
    assert asked.decision >= Decision.REVIEW
    assert asked.typology == "authority_impersonation"


def test_a_relative_named_for_an_organisations_bill(engine: RiskEngine, kit: Any) -> None:
    """The relation check compares the relative with the payee: a hospital is not a relative."""
    session = kit.session(stated_reason="老伴住院了，交住院押金")
    hospital = replace(kit.to_stranger("8000"), payee_name="市第一人民医院")
    person = replace(kit.to_stranger("8000"), payee_name="陈志强")
    to_hospital = engine.evaluate(hospital, kit.profile(), session, kit.lists(), kit.now)
    to_person = engine.evaluate(person, kit.profile(), session, kit.lists(), kit.now)
    assert "relative_on_new_account" not in to_hospital.reason_codes
    assert "relative_on_new_account" in to_person.reason_codes
    assert to_person.decision > to_hospital.decision


@pytest.mark.parametrize(
    ("text", "typology"),
    [
        ("zhong jiang le, yao jiao shuifei", "prize_tax"),
        ("an quan zhang hu, ta shuo", "safe_account"),
    ],
)
def test_pinyin_typed_a_syllable_at_a_time(engine: RiskEngine, text: str, typology: str) -> None:
    assert typology in counted(read(engine, text))
    # the parts alone are not words of the lexicon
    assert not counted(read(engine, text.split()[0]))


def test_a_long_known_payee_is_not_the_sellers_account(engine: RiskEngine, kit: Any) -> None:
    """A purchase story paid to someone paid for years (a friend repaid) is not
    paying the seller; the same words to a new payee are."""
    say = kit.session(stated_reason="paying back for the health supplements he bought me")
    old_friend = kit.profile(
        known_payees=(
            *kit.profile().known_payees,
            KnownPayee(kit.stranger, date(2018, 5, 1), "张伟"),
        )
    )
    op = kit.to_stranger("600")
    known = engine.evaluate(op, old_friend, say, kit.lists(), kit.now)
    assert "typology_health_products" not in known.reason_codes
    new = engine.evaluate(op, kit.profile(), say, kit.lists(), kit.now)
    assert "typology_health_products" in new.reason_codes
