"""Demo data for the embedded default: customers C1001-C1021, ten specialists and a
supervisor.

Idempotent: rows that exist are left as they are, so ``cloudbranch seed`` can run
on every ``make run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.passwords import hash_password
from server.banking.seed_ledger import seed_ledger
from server.db.models import Customer, Specialist, SpecialistDialect

DEMO_PASSWORD = "branch-demo"

# (id, name, age, dialect, phone)
CUSTOMERS: list[tuple[str, str, int, str, str]] = [
    ("C1001", "李秀英", 78, "wuu", "13801001001"),
    ("C1002", "吴国华", 83, "wuu", "13801001002"),
    ("C1003", "王桂兰", 71, "cmn", "13801001003"),
    ("C1004", "陈志强", 66, "yue", "13801001004"),
    ("C1005", "张美玲", 92, "wuu", "13801001005"),
    ("C1006", "刘建国", 58, "cmn", "13801001006"),
    ("C1007", "黄丽珍", 74, "yue", "13801001007"),
    ("C1008", "周德明", 88, "wuu", "13801001008"),
    ("C1009", "赵淑芬", 62, "cmn", "13801001009"),
    ("C1010", "徐根宝", 80, "wuu", "13801001010"),
    ("C1011", "林少华", 69, "yue", "13801001011"),
    ("C1012", "孙玉珍", 85, "cmn", "13801001012"),
    ("C1013", "朱阿毛", 90, "wuu", "13801001013"),
    ("C1014", "何淑仪", 77, "yue", "13801001014"),
    ("C1015", "马卫东", 60, "cmn", "13801001015"),
    ("C1016", "沈菊英", 81, "wuu", "13801001016"),
    ("C1017", "郭宝珠", 73, "yue", "13801001017"),
    ("C1018", "高振华", 65, "cmn", "13801001018"),
    ("C1019", "钱月娥", 87, "wuu", "13801001019"),
    ("C1020", "罗伟明", 70, "cmn", "13801001020"),
    # Passbook only: no bank card, no current account (server/banking/seed_ledger.py).
    ("C1021", "陆桂英", 88, "wuu", "13801001021"),
]


@dataclass(frozen=True)
class DemoSpecialist:
    specialist_id: str
    username: str
    display_name: str
    dialects: dict[str, int]
    skills: tuple[str, ...]


SPECIALISTS: list[DemoSpecialist] = [
    DemoSpecialist("S01", "chen.li", "陈丽", {"cmn": 5, "wuu": 5}, ("transfer", "deposit")),
    DemoSpecialist("S02", "wang.fang", "王芳", {"cmn": 5, "wuu": 4}, ("password", "card")),
    DemoSpecialist(
        "S03", "zhou.min", "周敏", {"cmn": 4, "wuu": 5}, ("transfer", "passbook", "loss_report")
    ),
    DemoSpecialist("S04", "huang.wei", "黄伟", {"cmn": 4, "yue": 5}, ("transfer", "card")),
    DemoSpecialist("S05", "liang.mei", "梁美", {"cmn": 3, "yue": 5}, ("deposit", "password")),
    DemoSpecialist("S06", "zhang.jun", "张军", {"cmn": 5}, ("transfer", "limit")),
    DemoSpecialist("S07", "li.na", "李娜", {"cmn": 5, "wuu": 2}, ("deposit", "card", "pension")),
    DemoSpecialist("S08", "xu.hong", "徐红", {"cmn": 4, "wuu": 5, "yue": 3}, ("transfer",)),
    DemoSpecialist(
        "S09", "he.jia", "何佳", {"cmn": 5, "yue": 4}, ("password", "passbook", "pension")
    ),
    DemoSpecialist(
        "S10", "gu.qiang", "顾强", {"cmn": 5, "wuu": 3}, ("limit", "transfer", "pension")
    ),
]


@dataclass(frozen=True)
class DemoSupervisor:
    staff_id: str
    username: str
    display_name: str


# Supervisors share the staff table with a role of their own: they log in like a
# specialist but are never offered calls nor counted as specialists.
SUPERVISORS: list[DemoSupervisor] = [
    DemoSupervisor("V01", "sun.hua", "孙华"),
]


async def seed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Insert the demo rows that are missing; returns how many of each were added."""
    now = datetime.now(tz=UTC)
    added = {"customers": 0, "specialists": 0}
    async with sessions() as session:
        for customer_id, name, age, dialect, phone in CUSTOMERS:
            if await session.get(Customer, customer_id) is None:
                session.add(
                    Customer(
                        customer_id=customer_id,
                        display_name=name,
                        age=age,
                        preferred_dialect=dialect,
                        phone=phone,
                        contact_consent=True,
                        do_not_call=False,
                        created_at=now,
                    )
                )
                added["customers"] += 1
        for spec in SPECIALISTS:
            if await session.get(Specialist, spec.specialist_id) is None:
                session.add(
                    Specialist(
                        specialist_id=spec.specialist_id,
                        username=spec.username,
                        display_name=spec.display_name,
                        password_hash=hash_password(DEMO_PASSWORD),
                        skills=list(spec.skills),
                        active=True,
                        created_at=now,
                        dialects=[
                            SpecialistDialect(dialect=d, proficiency=p)
                            for d, p in spec.dialects.items()
                        ],
                    )
                )
                added["specialists"] += 1
        added["supervisors"] = await _seed_supervisors(session, now)
        await session.commit()
    added.update(await seed_ledger(sessions, now))  # ledger demo data (server/banking)
    return added


async def _seed_supervisors(session: AsyncSession, now: datetime) -> int:
    added = 0
    for sup in SUPERVISORS:
        if await session.get(Specialist, sup.staff_id) is None:
            session.add(
                Specialist(
                    specialist_id=sup.staff_id,
                    username=sup.username,
                    display_name=sup.display_name,
                    password_hash=hash_password(DEMO_PASSWORD),
                    skills=[],
                    active=True,
                    created_at=now,
                    role="supervisor",
                    dialects=[],
                )
            )
            added += 1
    return added
