"""Test objects with sensible defaults; override what a test cares about."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from typing import Any

from ledger.accounts import AccountRecord

BASE = AccountRecord(
    account_id="acct",
    holder_name="王芳",
    phone="13900000001",
    id_last4="123X",
    card_last4="6001",
    credit_limit=2_000_000,
    statement_balance=1_000_000,
    minimum_payment=100_000,
    statement_date=date(2026, 3, 5),
    due_date=date(2026, 3, 25),
    paid_since_statement=0,
)


def record(**overrides: Any) -> AccountRecord:
    overrides.setdefault("account_id", f"t-{uuid.uuid4().hex[:10]}")
    return replace(BASE, **overrides)
