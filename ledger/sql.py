"""Small SQL helpers the ledger's bulk readers share."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam, insert
from sqlalchemy.orm import InstrumentedAttribute, Session


def among(session: Session, column: InstrumentedAttribute[Any], values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values` for thousands of values: one array parameter on PostgreSQL (`= ANY(...)`:
    a query with a parameter per value costs its driver and planner more than the lookup, and
    stops at 65,535 of them), plain IN on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def bulk_insert(session: Session, model: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert `rows` (values in `columns`' order) into `model`'s table in this transaction: one COPY
    on PostgreSQL (an INSERT per row costs it a statement each), one executemany on SQLite. Python
    defaults are not applied: every column written is given."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        conn = session.connection().connection.driver_connection
        assert conn is not None
        names = ", ".join(columns)
        with conn.cursor() as cur, cur.copy(f"COPY {model.__tablename__} ({names}) FROM STDIN") as copy:
            copy.write("".join(["\t".join([_copy_text(v) for v in row]) + "\n" for row in rows]))
        return
    session.execute(insert(model.__table__), [dict(zip(columns, row, strict=True)) for row in rows])


def _escaped(text: str) -> str:
    """COPY's text format: a backslash, tab, newline or carriage return in a value is escaped."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


_COPY_TEXT: dict[type, Any] = {
    str: _escaped,
    int: str,
    bool: lambda v: "t" if v else "f",
    type(None): lambda _: "\\N",
    date: date.isoformat,
    datetime: datetime.isoformat,
    Decimal: str,
    dict: lambda v: _escaped(json.dumps(v, ensure_ascii=False)),
    list: lambda v: _escaped(json.dumps(v, ensure_ascii=False)),
}


def _copy_text(value: object) -> str:
    return _COPY_TEXT[type(value)](value)  # type: ignore[no-any-return]
