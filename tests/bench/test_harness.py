"""The benchmark harnesses run on a tiny load (figures come from `make bench`, never from tests)."""

from __future__ import annotations

from bench.campaign import run


def test_campaign_benchmark_runs_on_sqlite() -> None:
    result = run(300, postgres=False)["results"]["sqlite"]
    assert result["accounts"] == 300 and 0 < result["selected"] <= 300
    assert result["selected"] == result["queued"] + sum(v for k, v in result["skipped"].items() if k != "quiet_hours")
