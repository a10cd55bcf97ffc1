"""Personal data never reaches the logs: the masking processor, alone and configured."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog

from server.logging import configure_logging, mask_personal_data, mask_text, mask_value

PHONE = "13801001001"  # a seeded customer's number
ID_NUMBER = "110105194912310021"
ID_NUMBER_X = "11010519491231002X"
ACCOUNT_16 = "6222021234567890"
ACCOUNT_19 = "6222021234567890123"


def masked(value: str) -> str:
    return "*" * (len(value) - 4) + value[-4:]


def process(**event: Any) -> dict[str, Any]:
    return dict(mask_personal_data(None, "info", {"event": "test", **event}))


def test_mask_value_keeps_the_last_four() -> None:
    assert mask_value(PHONE) == "*******1001"
    assert mask_value("李秀英") == "***"
    assert mask_value("abcd") == "****"
    assert mask_value("") == ""


@pytest.mark.parametrize(
    "number",
    [PHONE, "15912345678", "+8613801001001", "86-13801001001", "+86 13801001001"],
)
def test_phone_numbers_in_free_text(number: str) -> None:
    text = f"customer asked to be called on {number} tomorrow"
    assert mask_text(text) == f"customer asked to be called on {masked(number)} tomorrow"


@pytest.mark.parametrize("number", [ID_NUMBER, ID_NUMBER_X, ID_NUMBER_X.lower()])
def test_id_numbers_including_the_x_check_digit(number: str) -> None:
    assert mask_text(f"ID {number}.") == f"ID {masked(number)}."


@pytest.mark.parametrize("number", [ACCOUNT_16, "62220212345678901", ACCOUNT_19])
def test_account_and_card_numbers(number: str) -> None:
    assert mask_text(f"to {number} now") == f"to {masked(number)} now"


@pytest.mark.parametrize(
    "text",
    [
        "amount 50000.00 CNY",
        "position 3 of 12, waited 245 s",
        "2026-01-31T09:30:00Z",
        "short 123456789",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_values_under_personal_keys_are_masked_whatever_they_hold() -> None:
    event = process(
        name="李秀英",
        display_name="Li Xiuying",
        payee_name="王小明",
        payee_account="6222 0212 3456 7890",
        phone="138-0100-1001",
        id_number="110105 19491231 0021",
        card_no="6222-0212-3456-7890",
    )
    assert event["name"] == "***"
    assert event["display_name"] == masked("Li Xiuying")
    assert event["payee_name"] == "***"
    assert event["payee_account"] == masked("6222 0212 3456 7890")
    assert event["phone"] == masked("138-0100-1001")
    assert event["id_number"] == masked("110105 19491231 0021")
    assert event["card_no"] == masked("6222-0212-3456-7890")


def test_numbers_under_personal_keys_are_masked_too() -> None:
    event = process(phone=13801001001, payee_account=6222021234567890123, age=78, ok=True)
    assert event["phone"] == "*******1001"
    assert event["payee_account"] == masked(ACCOUNT_19)
    assert event["age"] == 78 and event["ok"] is True


def test_nested_dicts_and_lists_are_masked() -> None:
    event = process(
        params={
            "amount": "50000.00",
            "payee_account": ACCOUNT_19,
            "payee": {"name": "王小明", "mobile": "15912345678"},
            "history": [f"paid {ACCOUNT_16}", {"phone": PHONE}],
        },
        answers=(f"my number is {PHONE}",),
    )
    params = event["params"]
    assert params["amount"] == "50000.00"
    assert params["payee_account"] == masked(ACCOUNT_19)
    assert params["payee"] == {"name": "***", "mobile": masked("15912345678")}
    assert params["history"] == [f"paid {masked(ACCOUNT_16)}", {"phone": masked(PHONE)}]
    assert event["answers"] == [f"my number is {masked(PHONE)}"]


def test_the_event_text_is_scanned_and_ids_are_kept() -> None:
    event = process(call_id="a" * 32, offer_id="b" * 32, detail=f"ring {PHONE}")
    assert event["event"] == "test"
    assert event["call_id"] == "a" * 32 and event["offer_id"] == "b" * 32
    assert event["detail"] == f"ring {masked(PHONE)}"
    assert mask_personal_data(None, "info", {"event": f"dialled {PHONE}"})["event"] == (
        f"dialled {masked(PHONE)}"
    )


def test_the_configured_pipeline_masks_before_rendering(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "DEBUG")
    try:
        log = structlog.get_logger("server.calls.service")
        log.info("call.note", customer={"name": "李秀英", "phone": PHONE}, note=f"ID {ID_NUMBER}")
        try:
            raise ValueError(f"payee {ACCOUNT_19} refused")
        except ValueError:
            log.exception("transfer.failed")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        # The logger holds the captured stream; do not leave it configured.
        structlog.reset_defaults()
    assert [line["event"] for line in lines] == ["call.note", "transfer.failed"]
    text = json.dumps(lines, ensure_ascii=False)
    for secret in (PHONE, ID_NUMBER, ACCOUNT_19, "李秀英"):
        assert secret not in text
    assert lines[0]["customer"]["phone"] == masked(PHONE)
    assert masked(ACCOUNT_19) in lines[1]["exception"]
