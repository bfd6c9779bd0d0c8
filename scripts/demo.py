"""Demo accounts across buckets, dated relative to today so they stay M1..M4+ whenever you run them."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from ledger.accounts import AccountRecord, upsert_account

# (account_id, name, phone, id_last4, card_last4, balance yuan, minimum yuan, days overdue)
DEMO = [
    ("demo-m0", "陈晓明", "13800000000", "1010", "6000", 3200, 320, 0),
    ("demo-m1", "王芳", "13800000001", "1234", "6001", 8000, 800, 12),
    ("demo-m2", "李强", "13800000002", "2345", "6002", 15000, 1500, 45),
    ("demo-m3", "张伟", "13800000003", "345X", "6003", 26000, 2600, 75),
    ("demo-m4", "刘洋", "13800000004", "4567", "6004", 52000, 5200, 130),
]


def demo_records(today: date) -> list[AccountRecord]:
    records = []
    for account_id, name, phone, id4, card4, balance, minimum, overdue in DEMO:
        due = today - timedelta(days=overdue) if overdue else today + timedelta(days=10)
        statement = due - timedelta(days=20)
        records.append(
            AccountRecord(
                account_id=account_id,
                holder_name=name,
                phone=phone,
                id_last4=id4,
                card_last4=card4,
                credit_limit=max(balance, 10000) * 100,
                statement_balance=balance * 100,
                minimum_payment=minimum * 100,
                statement_date=statement,
                due_date=due,
                paid_since_statement=0,
            )
        )
    return records


def load_demo(session: Session, today: date) -> int:
    for record in demo_records(today):
        upsert_account(session, record, actor="demo")
    return len(DEMO)
