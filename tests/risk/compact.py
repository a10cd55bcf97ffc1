"""Compact scenario cases (tests/risk/scenarios/{tuning,held_out}/) expanded to full cases.

A compact case names only what differs from a standard household: a customer
aged 74 with 140,000 at hand, a son, a daughter, a grandson and an old friend
in the payee book for years, a utility, and monthly support of 2,000 and
1,000 plus bills of 400 for the last year. See the header of
``scenarios/held_out/cases.yaml`` for the fields.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

NOW = datetime.fromisoformat("2025-03-10T02:20:00+00:00")
LOCAL_OFFSET = timedelta(hours=8)
CUSTOMER = {"customer_id": "C7001", "name": "王秀英", "age": 74, "tenure_days": 9000}
HOME_BANK = "ICBC"

#: payee -> (account, name, bank, first seen, relation)
BOOK: dict[str, tuple[str, str, str, date, str | None]] = {
    "son": ("6222 0210 0001 0404", "张磊", "ICBC", date(2016, 3, 1), "family"),
    "daughter": ("6222 0210 0001 0505", "李娜", "ICBC", date(2014, 6, 1), "family"),
    "grandson": ("6222 0210 0001 0606", "张小明", "ICBC", date(2021, 9, 1), "family"),
    "friend": ("6222 0210 0001 0707", "周建华", "ICBC", date(2018, 5, 1), None),
    "utility": ("6222 0210 0001 0808", "自来水公司", "ICBC", date(2010, 1, 1), None),
    "own_known": ("6217 0033 0000 9999", CUSTOMER["name"], "CCB", date(2021, 4, 1), None),
    "company_known_60d": (
        "6222 0800 0000 1234",
        "美家装修工程有限公司",
        "BOC",
        (NOW - timedelta(days=60)).date(),
        None,
    ),
}
#: payees not in the book (added_today is in the book since today)
NEW: dict[str, tuple[str, str, str]] = {
    "new": ("6228 4800 5555 0001", "陈志强", "ABC"),
    "new_company": ("6222 0900 1111 2222", "宏达贸易有限公司", "CMB"),
    "own_new": ("6217 8888 1234 0001", CUSTOMER["name"], "PSBC"),
    "added_today": ("6214 1111 2222 3333", "刘强", "CCB"),
}
#: yearly rates by term, and the demand rate an early break falls back to
RATES = {3: 0.0125, 6: 0.0145, 12: 0.0165, 24: 0.0185, 36: 0.0225, 60: 0.023}
DEMAND_RATE = 0.002


def _history() -> dict[str, Any]:
    start = "2024-03-15T10:00:00+08:00"
    return {
        "series": [
            {
                "start": start,
                "every_days": 30,
                "count": 12,
                "amount": 2000,
                "payee_account": BOOK["son"][0],
                "local_hour": 10,
            },
            {
                "start": start,
                "every_days": 30,
                "count": 12,
                "amount": 1000,
                "payee_account": BOOK["grandson"][0],
                "local_hour": 10,
            },
            {
                "start": "2024-03-22T15:00:00+08:00",
                "every_days": 30,
                "count": 12,
                "amount": 400,
                "payee_account": BOOK["utility"][0],
                "local_hour": 15,
            },
        ]
    }


def _operation(op: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The operation mapping, and payee-book entries the case adds."""
    kind = op["kind"]
    extra: list[dict[str, Any]] = []
    if kind == "transfer":
        to = op["to"]
        if to in BOOK:
            account, name, bank, _, _ = BOOK[to]
        else:
            account, name, bank = NEW[to]
        name = op.get("payee_name", name)
        if to == "added_today":
            extra.append({"account": account, "first_seen": NOW.date().isoformat(), "name": name})
        return {
            "kind": kind,
            "amount": str(op["amount"]),
            "currency": "CNY",
            "payee_account": account,
            "payee_name": name,
            "payee_bank": bank,
        }, extra
    if kind == "limit_change":
        return {
            "kind": kind,
            "channel": op["channel"],
            "new_limit": str(op["new_limit"]),
            "currency": "CNY",
        }, extra
    if kind == "time_deposit":
        out: dict[str, Any] = {"kind": kind, "deposit_action": op["action"], "currency": "CNY"}
        if "amount" in op:
            out["amount"] = str(op["amount"])
        if "term_months" in op:
            out["term_months"] = op["term_months"]
        if op["action"] == "break":
            rate = RATES[op["term_months"]] - DEMAND_RATE
            forfeited = Decimal(op["amount"]) * Decimal(str(rate)) * op["months_held"] / 12
            out["interest_forfeited"] = str(forfeited.quantize(Decimal("0.01")))
        return out, extra
    if kind == "password_reset":
        return {"kind": kind, "channel": op.get("channel", "mobile")}, extra
    return {"kind": kind}, extra


def _integrity(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """The case's video integrity; absent means the media node reported nothing."""
    if raw is None:
        return None
    return {
        "status": raw["status"],
        "signals": list(raw.get("signals", [])),
        "liveness": raw.get("liveness"),
    }


def expand(case: dict[str, Any], part: str) -> dict[str, Any]:
    """One compact case as a full scenario (the codec's format)."""
    customer = {**CUSTOMER, "balance": "140000.00", **case.get("customer", {})}
    customer["balance"] = str(customer["balance"])
    operation, added = _operation(case["op"])
    payees = [
        {"account": a, "first_seen": seen.isoformat(), "name": n, "relation": rel}
        for a, n, _, seen, rel in BOOK.values()
    ] + added
    local = NOW + LOCAL_OFFSET
    if "hour" in case:
        local = local.replace(hour=case["hour"], minute=10)
    now = local - LOCAL_OFFSET
    events = [
        {"kind": e["kind"], "at": (now - timedelta(hours=e["hours_ago"])).isoformat()}
        for e in case.get("events", [])
    ]
    earlier = [
        {
            "kind": e["kind"],
            "at": (now - timedelta(minutes=e["minutes_ago"])).isoformat(),
            "outcome": e["outcome"],
            "amount": str(e["amount"]) if "amount" in e else None,
            "currency": "CNY",
            "payee_account": f"6228 0000 0000 {1000 + i}",
            "new_limit": str(e["new_limit"]) if "new_limit" in e else None,
        }
        for i, e in enumerate(case.get("earlier", []))
    ]
    return {
        "id": case["id"],
        "label": case["label"],
        "typology": case.get("typology"),
        "part": part,
        "phrasing": case.get("phrasing", []),
        "innocent_scam_words": bool(case.get("innocent_scam_words", False)),
        "description": case.get("description") or case.get("say") or case["id"],
        "now": now.isoformat(),
        "operation": operation,
        "profile": {
            **customer,
            "home_bank": HOME_BANK,
            "history": _history(),
            "known_payees": payees,
            "recent_events": events,
        },
        "session": {
            "call_id": "CALL-C",
            "redirect_kind": case.get("redirect"),
            "earlier_operations": earlier,
            "stated_reason": case.get("say"),
            "local_time": local.replace(tzinfo=None).isoformat(),
            "contact_phones": [],
            "video_integrity": _integrity(case.get("integrity")),
        },
        "lists": {
            "blocked_accounts": ["6217 0000 9999 0001"],
            "blocked_phones": ["17000001234"],
            "allow_list": [],
            "snoozes": [],
        },
    }


def load_compact(directory: Path) -> list[dict[str, Any]]:
    """Every compact case under ``directory``, expanded, with its file name."""
    found = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            found.append({**expand(case, data["part"]), "_file": f"{directory.name}/{path.name}"})
    return found
