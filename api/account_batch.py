"""Rows of a book to import (JSON lines, a JSON array, CSV) read and checked as `POST /v1/accounts`
checks one account: the same schema (`AccountCreate`), then the ledger's rules. Shared by
`POST /v1/accounts:batch` and `python -m scripts.import_accounts`."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from api.schemas import AccountCreate
from ledger.account_import import Checked, Rejected, check_record
from ledger.accounts import AccountRecord

FLAG_SEPARATORS = ("|", ";", ",", " ")


def fen_of(yuan: str) -> int:
    """A `MoneyIn` string (digits, then at most two decimals: the schema has checked it) in fen:
    what `to_fen` gives, without a Decimal per amount (a book of a million has five million)."""
    whole, _, cents = yuan.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0"))


def record_of(body: AccountCreate) -> AccountRecord:
    """The ledger's import record for a request body (money to fen)."""
    return AccountRecord(
        account_id=body.account_id,
        holder_name=body.holder_name,
        phone=body.phone,
        id_last4=body.id_last4,
        card_last4=body.card_last4,
        credit_limit=fen_of(body.credit_limit),
        statement_balance=fen_of(body.statement_balance),
        minimum_payment=fen_of(body.minimum_payment),
        statement_date=body.statement_date,
        due_date=body.due_date,
        paid_since_statement=fen_of(body.paid_since_statement),
        daily_interest_rate=body.daily_interest_rate,
        late_fee_rate=body.late_fee_rate,
        flags=tuple(body.flags),
        timezone=body.timezone,
        interest_start=body.interest_start,
    )


def check_row(line: int, raw: object) -> Checked:
    """One row: the request schema, then the ledger's rules; a rejection names the line and why."""
    if isinstance(raw, Rejected):
        return raw
    try:
        body = AccountCreate.model_validate(raw)
    except ValidationError as exc:
        return Rejected(line, _reason(exc), _field(exc))
    return check_record(line, record_of(body))


def _reason(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors(include_url=False)
    )


def _field(exc: ValidationError) -> str | None:
    loc = exc.errors(include_url=False)[0]["loc"]
    return str(loc[0]) if loc else None


def jsonl_rows(lines: Iterable[str | bytes]) -> Iterator[tuple[int, object]]:
    """(line number, the row's object, or its rejection) for each non-blank line."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, Rejected(number, f"not a JSON object: {exc}")


def json_array_rows(body: bytes) -> Iterator[tuple[int, object]]:
    """(position from 1, item) of a JSON array; the whole body rejected as line 0 if it is not one."""
    try:
        items = json.loads(body)
    except ValueError as exc:
        yield 0, Rejected(0, f"the body is not JSON: {exc}")
        return
    if not isinstance(items, list):
        yield 0, Rejected(0, "the body is not a JSON array of accounts (or send JSON lines)")
        return
    yield from enumerate(items, 1)


def csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, object]]:
    """(line number, row) of a CSV file with a header of AccountCreate's field names; an empty cell
    is a field left out (its default), `flags` are separated by | ; , or spaces."""
    reader = csv.DictReader(lines)
    for row in reader:
        out: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
        if None in row:
            yield reader.line_num, Rejected(reader.line_num, "more cells than the header has columns")
            continue
        if "flags" in out:
            flags = out["flags"]
            for sep in FLAG_SEPARATORS:
                flags = flags.replace(sep, " ")
            out["flags"] = flags.split()
        yield reader.line_num, out
