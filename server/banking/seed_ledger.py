"""Demo ledger for customers C1001 to C1021: accounts, payees, 180 days of history.

Idempotent (a customer who already has an account is left alone) and
deterministic: every customer's numbers come from a random generator seeded
with their id, and dates are relative to the ``now`` given, so two seedings at
the same instant produce the same ledger. Every balance is the sum of its
postings, opening balances included, and all balances together sum to zero
(the clearing account holds the other side).

Each customer has a current account (20,000 to 400,000 CNY), a monthly pension
credited on the 10th, a debit card, daily limits (counter 50,000 and mobile
20,000 CNY unless noted), long-known payees (children or grandchildren as
``family``, utilities, some a landlord) paid month after month, occasional
larger payments, one or two time deposits (C1019, a new customer, has none),
and for about half a passbook account.
No history falls on the seeding day itself, so today's limit is untouched.

Named demo situations:

- **C1001** 李秀英 (78, wuu): pension 4,800 on the 10th; sends her daughter
  张丽 (family, CCB, known 6 years) about 2,000 every month. Balance about
  128,000 plus a passbook.
- **C1002** 吴国华, "Grandpa Wu" (83, wuu): pension 8,800 on the 10th; regularly
  sends his son 吴建军 (family, BOC, known 8 years) 20,000 to 30,000 a month:
  a large transfer to his son is his habit, the same sum to a new payee is not.
  Counter limit 100,000; balance about 380,000 plus a passbook and a 200,000
  three-year deposit.
- **C1005** 张美玲 (92, wuu): passbook customer; mobile limit 0 (mobile
  transfers switched off at her request).
- **C1006** 刘建国 (58, cmn): the youngest; mobile limit 50,000.
- **C1008** 周德明 (88, wuu), and C1003 and C1014: a replacement card
  ``issued`` and waiting for activation.
- **C1012** 孙玉珍 (85, cmn): two time deposits, one maturing in 10 days.
- **C1013** 朱阿毛 (90, wuu): small balance (about 22,000) and one 10,000
  deposit; the insufficient-funds path.
- **C1016** 沈菊英 (81, wuu): counter limit lowered to 20,000 at her family's request.
- **C1017** 郭宝珠 (73, yue): reset her mobile password and bound a new phone
  yesterday: the account-takeover sequence the risk engine watches for.
- **C1019** 钱月娥 (87, wuu): opened her account 40 days ago and has made two
  transfers: thin history, so the risk engine falls back to her age band.
- **C1021** 陆桂英 (88, wuu): passbook only. No bank card and no current
  account: her pension is credited to her passbook, she pays her daughter and
  her bills from it, and her time deposit was funded from it.

Every passbook account has its printed passbook (``passbooks``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.banking import (
    Account,
    Card,
    CustomerEvent,
    Passbook,
    Payee,
    Posting,
    TimeDeposit,
    Transfer,
    TransferLimit,
)
from server.db.models import Customer

from .core import (
    CLEARING_ACCOUNT_ID,
    DEFAULT_DAILY_LIMITS,
    HOME_BANK,
    HOME_CURRENCY,
    LOCAL_TZ,
    cents,
    local_day_start,
)
from .products import DEPOSIT_RATES, add_months

DEMO_CUSTOMERS: Final = tuple(f"C{n}" for n in range(1001, 1022))
HISTORY_DAYS: Final = 180

#: Per dialect: the city's pension fund (and its account), electricity and gas
#: companies, and a hospital.
_CITY: Final = {
    "wuu": (
        "上海市社会保险事业管理中心",
        "3100000000000010",
        "国网上海市电力公司",
        "上海燃气有限公司",
        "复旦大学附属华山医院",
    ),
    "yue": (
        "广州市社会保险基金管理局",
        "4401000000000010",
        "广东电网广州供电局",
        "广州燃气集团",
        "中山大学附属第一医院",
    ),
    "cmn": (
        "北京市社会保险基金管理中心",
        "1100000000000010",
        "国网北京市电力公司",
        "北京市燃气集团",
        "北京协和医院",
    ),
}
_BANK_PREFIX: Final = {
    "ICBC": "622202",
    "CCB": "621700",
    "ABC": "622848",
    "BOC": "621661",
    "BOCOM": "622260",
    "CMB": "621483",
}
_SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN: Final = ("建军", "丽", "伟", "敏", "静", "磊", "晓明", "婷", "海燕", "志刚", "雪", "杰")


@dataclass(frozen=True)
class PayeeSpec:
    """A payee and how the customer pays them (``monthly`` None: occasionally)."""

    name: str
    bank: str
    relation: str | None
    years_known: float
    monthly: tuple[int, int] | None = None
    day: int = 12
    round_to: int = 100


@dataclass(frozen=True)
class LedgerSpec:
    customer_id: str
    years_with_bank: float
    pension: Decimal
    current_balance: int
    passbook_balance: int | None
    payees: tuple[PayeeSpec, ...]
    occasional: int = 1
    limits: dict[str, Decimal] = field(default_factory=dict)
    #: (principal, term in months, opened this many days ago)
    deposits: tuple[tuple[int, int, int], ...] = ()
    new_card: bool = False
    #: (event kind, hours ago)
    events: tuple[tuple[str, float], ...] = ()
    #: The customer's only account is a passbook: no current account, no card.
    passbook_only: bool = False


@dataclass
class _Flow:
    at: datetime
    direction: str  # in, out
    account_no: str
    name: str
    bank: str
    amount: Decimal


def _account_no(rng: random.Random, bank: str) -> str:
    return _BANK_PREFIX.get(bank, "621000") + "".join(rng.choice("0123456789") for _ in range(13))


def _name(rng: random.Random, surname: str | None = None) -> str:
    return (surname or rng.choice(_SURNAMES)) + rng.choice(_GIVEN)


def _generated(customer: Customer, rng: random.Random) -> LedgerSpec:
    """A plausible ledger for a customer without a named situation."""
    city = _CITY.get(customer.preferred_dialect or "cmn", _CITY["cmn"])
    surname = customer.display_name[0]
    years = rng.uniform(8, 35)
    children = rng.randint(1, 2)
    payees = [
        PayeeSpec(
            name=_name(rng, surname if rng.random() < 0.6 else None),
            bank=rng.choice(list(_BANK_PREFIX)),
            relation="family",
            years_known=rng.uniform(2, min(10, years)),
            monthly=(500, rng.choice((1500, 2500, 3500))),
            day=rng.randint(11, 15),
        )
        for _ in range(children)
    ]
    payees.append(
        PayeeSpec(city[2], HOME_BANK, "utility", rng.uniform(5, 10), (120, 480), 20, round_to=0)
    )
    payees.append(
        PayeeSpec(city[3], HOME_BANK, "utility", rng.uniform(5, 10), (60, 220), 21, round_to=0)
    )
    if rng.random() < 0.3:
        payees.append(PayeeSpec(_name(rng), "CCB", "landlord", rng.uniform(1, 6), (2500, 4500), 1))
    # Paid now and then (a hospital bill, a yearly premium), known for years.
    if rng.random() < 0.5:
        payees.append(PayeeSpec(city[4], HOME_BANK, "medical", rng.uniform(2, 8)))
    else:
        payees.append(
            PayeeSpec("中国人寿保险股份有限公司", HOME_BANK, "insurer", rng.uniform(2, 8))
        )
    deposits = tuple(
        (rng.randrange(10_000, 100_001, 1000), term, rng.randint(20, term * 30 - 20))
        for term in rng.sample((12, 24, 36), rng.randint(1, 2))
    )
    return LedgerSpec(
        customer_id=customer.customer_id,
        years_with_bank=years,
        pension=Decimal(rng.randrange(3000, 9001, 50)),
        current_balance=rng.randrange(30_000, 260_001, 1000),
        passbook_balance=rng.randrange(10_000, 150_001, 1000) if rng.random() < 0.5 else None,
        payees=tuple(payees),
        occasional=rng.randint(0, 2),
        limits={},
        deposits=deposits,
    )


def _spec(customer: Customer, rng: random.Random) -> LedgerSpec:
    """The customer's ledger: a generated one, with the named situations written out."""
    base = _generated(customer, rng)
    utilities = tuple(p for p in base.payees if p.relation == "utility")
    cid = customer.customer_id
    if cid == "C1001":
        daughter = PayeeSpec("张丽", "CCB", "family", 6.0, (1800, 2200), 12)
        return replace(
            base,
            years_with_bank=30,
            pension=Decimal("4800"),
            current_balance=128_000,
            passbook_balance=60_000,
            payees=(daughter, *utilities),
            occasional=1,
        )
    if cid == "C1002":
        son = PayeeSpec("吴建军", "BOC", "family", 8.0, (20_000, 30_000), 12, round_to=1000)
        return replace(
            base,
            years_with_bank=35,
            pension=Decimal("8800"),
            current_balance=380_000,
            passbook_balance=120_000,
            payees=(son, *utilities),
            occasional=0,
            limits={"counter": Decimal("100000.00")},
            deposits=((200_000, 36, 400),),
        )
    if cid == "C1005":
        return replace(base, passbook_balance=90_000, limits={"mobile": Decimal("0.00")})
    if cid == "C1006":
        return replace(base, limits={"mobile": Decimal("50000.00")})
    if cid in ("C1003", "C1008", "C1014"):
        return replace(base, new_card=True)
    if cid == "C1012":
        return replace(base, deposits=((50_000, 12, 355), (30_000, 24, 200)))
    if cid == "C1013":
        return replace(
            base, current_balance=22_000, passbook_balance=None, deposits=((10_000, 12, 150),)
        )
    if cid == "C1016":
        return replace(base, limits={"counter": Decimal("20000.00")})
    if cid == "C1017":
        return replace(base, events=(("password_reset", 26.0), ("new_device", 25.0)))
    if cid == "C1021":
        daughter = PayeeSpec("陆美华", "ICBC", "family", 9.0, (800, 1500), 13)
        return replace(
            base,
            years_with_bank=40,
            pension=Decimal("3900"),
            current_balance=86_000,
            passbook_balance=None,
            payees=(daughter, *utilities),
            occasional=0,
            deposits=((20_000, 12, 120),),
            passbook_only=True,
        )
    if cid == "C1019":
        granddaughter = PayeeSpec("钱佳怡", "CMB", "family", 35 / 365, None)
        electricity = replace(utilities[0], years_known=20 / 365, monthly=None)
        return replace(
            base,
            years_with_bank=40 / 365,
            current_balance=52_000,
            passbook_balance=None,
            payees=(granddaughter, electricity),
            occasional=0,
            deposits=(),
        )
    return base


def _local(day: datetime, hour: int, minute: int) -> datetime:
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)


def _months(start: datetime, end: datetime) -> list[datetime]:
    """First day (local midnight) of every month that overlaps [start, end)."""
    first = start.astimezone(LOCAL_TZ).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    months = []
    while first < end:
        months.append(first)
        first = add_months(first, 1)
    return months


def _history(
    spec: LedgerSpec,
    customer: Customer,
    rng: random.Random,
    payees: list[tuple[PayeeSpec, str]],
    opened: datetime,
    now: datetime,
) -> list[_Flow]:
    """Pension credits and payments from the later of 180 days ago and account opening
    up to the end of yesterday (local)."""
    start = max(now - timedelta(days=HISTORY_DAYS), opened + timedelta(days=1))
    end = local_day_start(now)
    city = _CITY.get(customer.preferred_dialect or "cmn", _CITY["cmn"])
    flows: list[_Flow] = []

    def add(at: datetime, direction: str, payee: tuple[str, str, str], amount: Decimal) -> None:
        if start <= at < end:
            flows.append(_Flow(at, direction, *payee, amount=cents(amount)))

    pension_payer = (city[1], city[0], HOME_BANK)
    for month in _months(start, end):
        add(_local(month.replace(day=10), 8, rng.randint(5, 40)), "in", pension_payer, spec.pension)
        for payee, account_no in payees:
            if payee.monthly is None:
                continue
            low, high = payee.monthly
            if payee.round_to:
                amount = Decimal(rng.randrange(low, high + 1, payee.round_to))
            else:
                amount = Decimal(rng.randint(low * 100, high * 100)) / 100
            at = _local(month.replace(day=payee.day), rng.randint(9, 15), rng.randint(0, 59))
            add(at, "out", (account_no, payee.name, payee.bank), amount)
    # Occasional larger payments: a gift to family, a hospital bill, a premium.
    family = [p for p in payees if p[0].relation == "family"]
    others = [p for p in payees if p[0].monthly is None and p[0].relation != "family"]
    for i in range(spec.occasional):
        day = start + timedelta(days=rng.randint(5, max(5, (end - start).days - 2)))
        at = _local(day.astimezone(LOCAL_TZ), rng.randint(9, 15), rng.randint(0, 59))
        if family and (i % 2 == 0 or not others):
            payee, account_no = rng.choice(family)
            amount = Decimal(rng.randrange(3000, 10001, 500))
        elif others:
            payee, account_no = rng.choice(others)
            amount = Decimal(rng.randrange(3000, 15001, 100))
        else:
            continue
        add(at, "out", (account_no, payee.name, payee.bank), amount)
    if spec.customer_id == "C1019":
        # Her two transfers so far: the granddaughter, then the electricity bill.
        (grandchild, g_account), (utility, u_account) = payees[0], payees[1]
        for days_ago, (p, account_no), amount in (
            (35, (grandchild, g_account), Decimal("1000")),
            (20, (utility, u_account), Decimal("186.40")),
        ):
            at = _local((now - timedelta(days=days_ago)).astimezone(LOCAL_TZ), 10, 15)
            add(at, "out", (account_no, p.name, p.bank), amount)
    return sorted(flows, key=lambda f: f.at)


class _Builder:
    """Collects one customer's rows; every transfer gets two balanced postings."""

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.rows: list[object] = []
        #: posting rows, inserted in one batch (nothing needs their generated ids)
        self.postings: list[dict[str, object]] = []
        self.clearing_delta = Decimal("0")
        self._seq = 0

    def transfer(
        self,
        account: Account,
        direction: str,
        payee: tuple[str, str, str],
        amount: Decimal,
        at: datetime,
    ) -> None:
        self._seq += 1
        transfer_id = f"TS{self.customer_id[1:]}{self._seq:05d}"
        account_no, name, bank = payee
        self.rows.append(
            Transfer(
                transfer_id=transfer_id,
                operation_id=None,
                customer_id=self.customer_id,
                from_account_id=account.account_id,
                payee_account=account_no,
                payee_name=name,
                payee_bank=bank,
                amount=cents(amount),
                currency=HOME_CURRENCY,
                direction=direction,
                executed_at=at,
            )
        )
        delta = cents(amount) if direction == "in" else -cents(amount)
        account.balance = cents(account.balance + delta)
        self.clearing_delta -= delta
        for account_id, leg in ((account.account_id, delta), (CLEARING_ACCOUNT_ID, -delta)):
            self.postings.append(
                {
                    "transfer_id": transfer_id,
                    "account_id": account_id,
                    "amount": leg,
                    "currency": HOME_CURRENCY,
                    "posted_at": at,
                }
            )


def _build(customer: Customer, now: datetime) -> _Builder:
    rng = random.Random(f"cloudbranch-ledger-{customer.customer_id}")
    spec = _spec(customer, rng)
    cid = customer.customer_id
    number = cid[1:]
    since = customer.customer_since or (now - timedelta(days=round(spec.years_with_bank * 365.25)))
    out = _Builder(cid)
    opening = (CLEARING_ACCOUNT_ID, "开户存入", HOME_BANK)

    # The account pension and payments go through: the current account, or for
    # a passbook-only customer the passbook account.
    main_no = (
        f"1001{number}0{rng.randint(1000000, 9999999)}"
        if spec.passbook_only
        else f"6222021{number}00{rng.randint(10000, 99999)}"
    )
    current = Account(
        account_id=main_no,
        customer_id=cid,
        kind="passbook" if spec.passbook_only else "current",
        currency=HOME_CURRENCY,
        balance=Decimal("0.00"),
        opened_at=since,
    )
    out.rows.append(current)

    payees: list[tuple[PayeeSpec, str]] = []
    for p in spec.payees:
        # A utility company has one account for all its customers.
        source = random.Random(p.name) if p.relation == "utility" else rng
        account_no = _account_no(source, p.bank)
        payees.append((p, account_no))
        first_seen = max(now - timedelta(days=round(p.years_known * 365.25)), since)
        out.rows.append(
            Payee(
                customer_id=cid,
                account_no=account_no,
                name=p.name,
                bank=p.bank,
                relation=p.relation,
                first_seen_at=first_seen,
            )
        )

    flows = _history(spec, customer, rng, payees, since, now)
    deposits: list[tuple[TimeDeposit, datetime]] = []
    for i, (principal, term, days_ago) in enumerate(spec.deposits, start=1):
        opened = max(now - timedelta(days=days_ago), since + timedelta(days=1))
        opened = _local(opened.astimezone(LOCAL_TZ), 10, 0)
        deposit = TimeDeposit(
            deposit_id=f"TD{cid}{i:02d}",
            customer_id=cid,
            account_id=current.account_id,
            principal=Decimal(principal),
            currency=HOME_CURRENCY,
            term_months=term,
            annual_rate=DEPOSIT_RATES[term],
            opened_at=opened,
            matures_at=add_months(opened, term),
            state="open",
            closed_at=None,
        )
        out.rows.append(deposit)
        deposits.append((deposit, opened))
        flows.append(
            _Flow(
                opened,
                "out",
                CLEARING_ACCOUNT_ID,
                f"定期存款开户 {deposit.deposit_id}",
                HOME_BANK,
                Decimal(principal),
            )
        )
    flows.sort(key=lambda f: f.at)

    # Opening balance: whatever makes today's balance the target, and never
    # lets the account go below 2,000 on the way.
    running, lowest = Decimal("0"), Decimal("0")
    for f in flows:
        running += f.amount if f.direction == "in" else -f.amount
        lowest = min(lowest, running)
    opening_amount = Decimal(spec.current_balance) - running
    opening_amount = max(opening_amount, Decimal("2000") - lowest)
    out.transfer(current, "in", opening, opening_amount, since)
    for f in flows:
        out.transfer(current, f.direction, (f.account_no, f.name, f.bank), f.amount, f.at)

    if spec.passbook_balance is not None:
        passbook = Account(
            account_id=f"1001{number}0{rng.randint(1000000, 9999999)}",
            customer_id=cid,
            kind="passbook",
            currency=HOME_CURRENCY,
            balance=Decimal("0.00"),
            opened_at=since,
        )
        out.rows.append(passbook)
        out.transfer(passbook, "in", opening, Decimal(spec.passbook_balance), since)
    for account in [r for r in out.rows if isinstance(r, Account) and r.kind == "passbook"]:
        out.rows.append(
            Passbook(
                passbook_id=f"PB{account.account_id}",
                account_id=account.account_id,
                customer_id=cid,
                state="active",
                issued_at=since,
                replaces=None,
            )
        )

    limits = {**DEFAULT_DAILY_LIMITS, **spec.limits}
    for channel in ("counter", "mobile"):
        out.rows.append(
            TransferLimit(
                customer_id=cid,
                channel=channel,
                daily_limit=limits[channel],
                currency=HOME_CURRENCY,
                updated_at=since,
            )
        )
    if not spec.passbook_only:
        out.rows.append(
            Card(
                card_id=f"CD{cid}01",
                customer_id=cid,
                last4=current.account_id[-4:],
                state="active",
                activated_at=since + timedelta(days=7),
            )
        )
    if spec.new_card:
        out.rows.append(
            Card(
                card_id=f"CD{cid}02",
                customer_id=cid,
                last4=f"{rng.randint(0, 9999):04d}",
                state="issued",
                activated_at=None,
            )
        )
    for kind, hours_ago in spec.events:
        out.rows.append(
            CustomerEvent(
                customer_id=cid,
                kind=kind,
                at=now - timedelta(hours=hours_ago),
                data={"source": "demo"},
            )
        )
    return out


async def _ensure_clearing(session: AsyncSession, now: datetime) -> None:
    if await session.get(Account, CLEARING_ACCOUNT_ID) is None:
        session.add(
            Account(
                account_id=CLEARING_ACCOUNT_ID,
                customer_id=None,
                kind="clearing",
                currency=HOME_CURRENCY,
                balance=Decimal("0.00"),
                opened_at=now - timedelta(days=365 * 40),
            )
        )
        await session.flush()


async def seed_ledger(sessions: async_sessionmaker[AsyncSession], now: datetime) -> dict[str, int]:
    """Seed the demo ledger for C1001 to C1020 where it is missing; returns counts added.

    Customers who already have an account are left exactly as they are.
    Customers with no ``customer_since`` get one (their accounts' opening date).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone aware")
    added = {"ledger_customers": 0, "transfers": 0}
    async with sessions() as session:
        await _ensure_clearing(session, now)
        customers = (
            (
                await session.execute(
                    select(Customer)
                    .where(Customer.customer_id.in_(DEMO_CUSTOMERS))
                    .order_by(Customer.customer_id)
                )
            )
            .scalars()
            .all()
        )
        have_accounts = set(
            (
                await session.execute(
                    select(Account.customer_id)
                    .where(Account.customer_id.in_(DEMO_CUSTOMERS))
                    .distinct()
                )
            ).scalars()
        )
        built = [_build(c, now) for c in customers if c.customer_id not in have_accounts]
        by_id = {c.customer_id: c for c in customers}
        for b in built:
            customer = by_id[b.customer_id]
            if customer.customer_since is None:
                customer.customer_since = min(r.opened_at for r in b.rows if isinstance(r, Account))
        # Parents before children, so foreign keys hold at every flush.
        session.add_all(r for b in built for r in b.rows if isinstance(r, Account))
        await session.flush()
        session.add_all(r for b in built for r in b.rows if not isinstance(r, Account))
        await session.flush()
        postings = [p for b in built for p in b.postings]
        if postings:
            await session.execute(insert(Posting), postings)
        clearing_delta = sum((b.clearing_delta for b in built), Decimal("0"))
        added["ledger_customers"] = len(built)
        added["transfers"] = sum(isinstance(r, Transfer) for b in built for r in b.rows)
        if clearing_delta:
            await session.execute(
                update(Account)
                .where(Account.account_id == CLEARING_ACCOUNT_ID)
                .values(balance=func.round(Account.balance + clearing_delta, 2))
            )
        await session.commit()
    return added
