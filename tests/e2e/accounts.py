"""Accounts made through the admin API for one test each, so tests never share ledger state."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import httpx

from ledger.clock import process_clock
from tests.e2e.conftest import Running


@dataclass
class Holder:
    account_id: str
    phone: str
    id_last4: str
    card_last4: str

    def credentials(self) -> str:
        return f"手机{self.phone}，身份证后四位{self.id_last4}，卡号后四位{self.card_last4}"


def today() -> date:
    """The stack's today: the test run's TEST_CLOCK, which every process of the stack also reads."""
    return process_clock().today()


def said(day: date) -> str:
    """A date as the bot writes it ("12月30日")."""
    return f"{day.month}月{day.day}日"


def new_holder(
    running: Running,
    overdue_days: int,
    balance: str = "12000.00",
    minimum: str = "1200.00",
    flags: list[str] | None = None,
) -> Holder:
    due = today() - timedelta(days=overdue_days) if overdue_days else today() + timedelta(days=10)
    holder = Holder(
        f"e2e-{uuid.uuid4().hex[:10]}",
        f"139{random.randint(10_000_000, 99_999_999)}",
        f"{random.randint(0, 999):03d}X",
        f"{random.randint(0, 9999):04d}",
    )
    body = {
        "account_id": holder.account_id,
        "holder_name": "测试用户",
        "phone": holder.phone,
        "id_last4": holder.id_last4,
        "card_last4": holder.card_last4,
        "credit_limit": "20000.00",
        "statement_balance": balance,
        "minimum_payment": minimum,
        "statement_date": (due - timedelta(days=20)).isoformat(),
        "due_date": due.isoformat(),
        "paid_since_statement": "0.00",
        "flags": flags or [],
    }
    r = httpx.post(f"{running.gateway}/v1/accounts", json=body, headers=running.admin, timeout=30)
    assert r.status_code == 201, r.text
    return holder


def view(running: Running, holder: Holder) -> dict:  # type: ignore[type-arg]
    r = httpx.get(f"{running.gateway}/v1/accounts/{holder.account_id}", headers=running.admin, timeout=30)
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def verified(running: Running, conversation_id: str, holder: Holder) -> None:
    assert "验证通过" in running.texts(conversation_id, holder.credentials())


def sms(running: Running, phone: str, body: str) -> None:
    """An SMS from `phone` to us, as the local (outbox) provider's inbound webhook takes it."""
    r = httpx.post(
        f"{running.gateway}/v1/sms/inbound",
        timeout=30,
        data={"From": f"+86{phone}", "To": "+8610690000", "Body": body, "MessageSid": f"SM{uuid.uuid4().hex}"},
        headers=running.sms_headers,
    )
    assert r.status_code == 200, r.text


def outbox(running: Running, phone: str) -> list[str]:
    """The bodies of the SMS we sent to `phone`."""
    r = httpx.get(f"{running.gateway}/v1/sms/outbox", params={"to": phone}, headers=running.admin, timeout=30)
    return [m["body"] for m in r.json()]
