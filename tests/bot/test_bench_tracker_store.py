"""The tracker-store benchmark runs on a tiny load (its figures come from `make bench`)."""

from __future__ import annotations

from pathlib import Path

from rasa.shared.core.domain import Domain

from bench.tracker_store import ROOT, compare


def test_tracker_store_benchmark_runs(tmp_path: Path) -> None:
    domain = Domain.load(str(ROOT / "domain.yml"))
    results = compare(
        domain, {"sqlite": {"dialect": "sqlite", "db": str(tmp_path / "t.db")}}, conversations=1, rounds=1
    )
    row = results["sqlite"]
    assert row["rasa_sql"] > 0 and row["cached_sql"] > 0 and row["ratio"] > 0
