"""Small SQL helpers the ledger's bulk readers share."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam
from sqlalchemy.orm import InstrumentedAttribute, Session


def among(session: Session, column: InstrumentedAttribute[Any], values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values` for thousands of values: one array parameter on PostgreSQL (`= ANY(...)`:
    a query with a parameter per value costs its driver and planner more than the lookup, and
    stops at 65,535 of them), plain IN on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
