"""Passbook lines and PDF certificates: pure layout, rendered off the event loop.

The passbook prints one line per entry: date, what it was (摘要), the amount
out or in, and the balance after it, in fixed columns as a passbook printer
does. Certificates (a deposit certificate, an account statement) are PDFs
drawn with fpdf2 in the Chinese font Debian ships as ``fonts-wqy-microhei``;
without that font no certificate is produced (the operation fails with
``document_unavailable``), rather than one whose Chinese is blank.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from .core import ExecutionFailed, money_str

#: Where Debian's fonts-wqy-microhei puts its font (installed by ``make system-deps``).
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


@dataclass(frozen=True)
class PrintedEntry:
    day: date
    summary: str
    amount: Decimal  # the change in the balance: negative out, positive in
    balance: Decimal  # after this entry

    def as_dict(self) -> dict[str, str]:
        return {
            "date": self.day.isoformat(),
            "summary": self.summary,
            "withdrawal": money_str(-self.amount) if self.amount < 0 else "",
            "deposit": money_str(self.amount) if self.amount > 0 else "",
            "balance": money_str(self.balance),
        }


def summary_of(amount: Decimal, name: str, internal: bool) -> str:
    """The passbook's 摘要 for an entry: what a teller would write, short."""
    if internal:
        return name.split(" ")[0][:8]  # 开户存入, 定期存款开户, ...
    if amount > 0:
        return ("入账 " + name)[:12]
    return ("转账 " + name)[:12]


def _width(text: str) -> int:
    """Columns a string takes when printed: a Chinese character takes two."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, columns: int) -> str:
    return text + " " * max(columns - _width(text), 0)


def _right(text: str, columns: int) -> str:
    return " " * max(columns - _width(text), 0) + text


def passbook_lines(entries: list[PrintedEntry]) -> list[str]:
    """The entries as a passbook prints them, a header line first."""
    lines = [
        _pad("日期", 12)
        + _pad("摘要", 26)
        + _right("支出", 14)
        + _right("存入", 14)
        + _right("余额", 16)
    ]
    for e in entries:
        row = e.as_dict()
        lines.append(
            _pad(row["date"], 12)
            + _pad(e.summary, 26)
            + row["withdrawal"].rjust(14)
            + row["deposit"].rjust(14)
            + row["balance"].rjust(16)
        )
    return lines


@dataclass(frozen=True)
class CertificateContent:
    kind: str  # deposit, statement
    customer_name: str
    issued_at: datetime
    period: tuple[date, date]
    #: (account number, kind, balance at the period's end)
    accounts: tuple[tuple[str, str, Decimal], ...]
    #: (deposit id, term in months, principal, maturity)
    deposits: tuple[tuple[str, int, Decimal, date], ...]
    entries: tuple[PrintedEntry, ...]
    reference: str

    def total(self) -> Decimal:
        return sum((b for _, _, b in self.accounts), Decimal("0")) + sum(
            (p for _, _, p, _ in self.deposits), Decimal("0")
        )


_KIND_ZH = {"current": "活期", "passbook": "存折", "savings": "储蓄"}


def _draw(content: CertificateContent, font: Path) -> bytes:
    from fpdf import FPDF

    from server.banking.amount_words import chinese_amount

    pdf = FPDF(format="A4")
    pdf.set_creator("Cloud Branch")
    pdf.set_title("存款证明" if content.kind == "deposit" else "账户对账单")
    pdf.add_font("cjk", fname=str(font), collection_font_number=0)
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    title = "存款证明 Deposit certificate" if content.kind == "deposit" else "账户对账单 Statement"
    pdf.cell(0, 12, title, new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("cjk", size=11)
    start, end = content.period
    period = f"截至 {end.isoformat()}" if content.kind == "deposit" else f"{start} 至 {end}"
    for line in (
        f"户名 Name: {content.customer_name}",
        f"期间 Period: {period}",
        f"出具时间 Issued: {content.issued_at.strftime('%Y-%m-%d %H:%M')} (UTC+8)",
        f"业务编号 Reference: {content.reference}",
    ):
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for account, kind, balance in content.accounts:
        pdf.cell(
            0,
            7,
            f"{_KIND_ZH.get(kind, kind)}账户 {account}: {money_str(balance)} CNY",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    for deposit_id, term, principal, matures in content.deposits:
        pdf.cell(
            0,
            7,
            f"定期 {deposit_id} {term}个月: {money_str(principal)} CNY，{matures} 到期",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    if content.entries:
        pdf.ln(3)
        pdf.set_font("cjk", size=9)
        for e in content.entries:
            row = e.as_dict()
            pdf.cell(
                0,
                5,
                f"{row['date']}  {e.summary:<14} {row['withdrawal']:>14} "
                f"{row['deposit']:>14} {row['balance']:>16}",
                new_x="LMARGIN",
                new_y="NEXT",
            )
        pdf.set_font("cjk", size=11)
    if content.kind == "deposit":
        total = content.total()
        pdf.ln(3)
        pdf.cell(
            0,
            8,
            f"合计 Total: {money_str(total)} CNY（{chinese_amount(total)}）",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    return bytes(pdf.output())


async def render_pdf(content: CertificateContent, font: Path = CJK_FONT) -> bytes:
    """The certificate as PDF bytes, drawn in a worker thread."""
    return await asyncio.to_thread(_render, content, font)


def _render(content: CertificateContent, font: Path) -> bytes:
    if not font.is_file():
        raise ExecutionFailed(
            "document_unavailable", f"the Chinese font {font.name} is not installed"
        )
    return _draw(content, font)
