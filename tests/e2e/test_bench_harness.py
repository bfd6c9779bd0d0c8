"""The benchmark harness runs on a tiny load (figures come from `make bench`, not from tests)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bench.turns import TURNS, compare, holders_needed, make_holders
from ledger.db import transaction
from ledger.models import Account, Plan, Promise
from tests.e2e.accounts import today
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def test_turn_benchmark_harness_runs_and_its_conversations_negotiate(running: Running) -> None:
    rasa = f"http://127.0.0.1:{running.stack.ports['rasa']}"
    holders = make_holders(running.stack.database_url, holders_needed([1], 2), today(), start=900_000)
    rows, totals = asyncio.run(compare(running.gateway, rasa, [1], 2, holders, progress=False))
    [row] = rows
    assert row["bare_rasa"]["errors"] == 0 and row["gateway"]["errors"] == 0
    assert row["gateway"]["turns"] == row["bare_rasa"]["turns"] == 2 * TURNS
    assert totals["gateway_sent"] == 4 * TURNS and row["p50_ratio"] is not None
    # Every scripted conversation that asked for a plan or promised got it written, on both paths.
    with transaction(running.stack.database_url) as s:
        bench = select(Account.id).where(Account.account_id.like("bench-009%"))
        plans = s.scalars(select(Plan).where(Plan.account_pk.in_(bench))).all()
        promises = s.scalars(select(Promise).where(Promise.account_pk.in_(bench))).all()
    assert len(plans) == totals["plans_asked"] == 4 and {p.periods for p in plans} == {6}
    assert len(promises) == totals["promises_asked"] == 4 and {p.amount for p in promises} == {50_000}
