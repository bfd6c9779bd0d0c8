"""The benchmark harness runs on a tiny load (figures come from `make bench`, not from tests)."""

from __future__ import annotations

import asyncio

import pytest

from bench.turns import compare
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def test_turn_benchmark_harness_runs(running: Running) -> None:
    rasa = f"http://127.0.0.1:{running.stack.ports['rasa']}"
    rows, sent = asyncio.run(compare(running.gateway, rasa, [1], 1, progress=False))
    [row] = rows
    assert row["bare_rasa"]["errors"] == 0 and row["gateway"]["errors"] == 0
    assert row["gateway"]["turns"] == row["bare_rasa"]["turns"] == 7
    assert sent == 3 * 7 and row["p50_ratio"] is not None
