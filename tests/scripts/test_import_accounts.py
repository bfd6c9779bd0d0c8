"""`python -m scripts.import_accounts`: a JSON-lines or CSV book imported all or nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.db import Database
from ledger.models import Account, Hold
from scripts import import_accounts
from settings import get_settings
from tests.conftest import fresh_schema

HEADER = "account_id,holder_name,phone,id_last4,card_last4,credit_limit,statement_balance,minimum_payment,"
HEADER += "statement_date,due_date,paid_since_statement,flags,timezone\n"


def _row(account_id: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "account_id": account_id,
        "holder_name": "赵敏",
        "phone": "13911112222",
        "id_last4": "1234",
        "card_last4": "8888",
        "credit_limit": "30000.00",
        "statement_balance": "8000.00",
        "minimum_payment": "800.00",
        "statement_date": "2026-03-05",
        "due_date": "2026-03-25",
    }
    row.update(overrides)
    return row


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = f"sqlite+pysqlite:///{tmp_path / 'book.db'}"
    fresh_schema(url)
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    db = Database(url)
    yield db
    db.dispose()
    get_settings.cache_clear()


def _count(db: Database) -> int:
    with db.transaction(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(Account)) or 0)


def test_a_csv_book_is_imported(scratch: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "book.csv"
    book.write_text(
        HEADER
        + "c1,赵敏,+86 139-1111-2222,1234,8888,30000.00,8000.00,800.00,2026-03-05,2026-03-25,,dispute|legal_hold,\n"
        + "c2,钱多,13911113333,123x,8889,30000,8000,800,2026-03-05,2026-03-25,100.50,,Asia/Urumqi\n",
        encoding="utf-8",
    )
    assert import_accounts.main([str(book)]) == 0
    assert "imported 2 rows: 2 new accounts, 0 re-imported" in capsys.readouterr().out
    with scratch.transaction(readonly=True) as s:
        assert sorted(s.scalars(select(Hold.kind))) == ["dispute", "legal_hold"]
    assert _count(scratch) == 2


def test_a_book_with_a_bad_row_imports_nothing_and_lists_it(
    scratch: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "book.jsonl"
    rows = [_row("j1"), _row("j2", minimum_payment="9000.00"), _row("j3"), _row("j1")]
    book.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    rejected = tmp_path / "rejected.csv"
    assert import_accounts.main([str(book), "--chunk", "2", "--rejected", str(rejected)]) == 1
    err = capsys.readouterr().err
    assert "2 of 4 rows were rejected; nothing was imported" in err
    assert "line 2: minimum_payment exceeds statement_balance" in err and "line 4: account_id j1" in err
    assert rejected.read_text(encoding="utf-8").splitlines()[1:] == [
        "2,minimum_payment,minimum_payment exceeds statement_balance",
        "4,account_id,account_id j1 is already on line 1",
    ]
    assert _count(scratch) == 0
    # Mended, the same file goes in whole; again, it re-imports (nothing doubled).
    book.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:1] + rows[2:3]), encoding="utf-8")
    assert import_accounts.main([str(book)]) == 0
    assert import_accounts.main([str(book)]) == 0
    assert "2 re-imported" in capsys.readouterr().out
    assert _count(scratch) == 2
