"""The benchmark harnesses run on a tiny load (figures come from `make bench`, never from tests)."""

from __future__ import annotations

from bench.campaign import run


def test_campaign_benchmark_runs_on_sqlite() -> None:
    result = run(300, postgres=False)["results"]["sqlite"]
    assert result["accounts"] == 300 and 0 < result["selected"] <= 300 and result["peak_python_mib"] > 0
    assert result["selected"] == result["queued"] + sum(v for k, v in result["skipped"].items() if k != "quiet_hours")


def test_a_failed_turn_counts_in_the_percentiles_and_never_as_a_fast_one() -> None:
    from bench.turns import FAILED, Run

    run = Run(latencies=[0.010] * 6 + [FAILED] * 4, errors=4, sent=10, elapsed=1.0)
    figures = run.summary()
    assert figures["turns"] == 10 and figures["errors"] == 4
    assert figures["p50_ms"] == 10.0  # six of ten answered in 10 ms
    assert figures["p95_ms"] is None  # beyond them: failures, not a figure
    assert figures["turns_per_s"] == 6.0
    assert Run(latencies=[FAILED] * 3, errors=3).summary()["p50_ms"] is None


def test_the_soaks_holders_are_inside_the_contact_window_whatever_hour_it_starts() -> None:
    """The soak's campaigns must send whenever it runs: its holders live where it is about noon."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from bench.soak import midday_zone

    start = datetime(2026, 12, 7, 0, 40, tzinfo=UTC)
    for hour in range(24):
        now = start + timedelta(hours=hour)
        local = now.astimezone(ZoneInfo(midday_zone(now)))
        assert local.hour == 12, (now, local)


def test_each_soak_window_writes_to_a_batch_of_its_own() -> None:
    from bench.soak import overdue_days

    days = [overdue_days(k) for k in range(60)]
    assert len(set(days)) == 60 and min(days) == 12


def test_import_benchmark_runs_on_sqlite() -> None:
    from bench.import_accounts import run as run_import

    result = run_import(300, postgres=False)["results"]["sqlite"]
    assert result["accounts"] == result["created"] == 300 and result["accounts_per_s"] > 0
