"""The process clock: the system's, or a test stack's fixed instant, and never that outside the tests."""

from __future__ import annotations

from datetime import datetime

import pytest

from ledger.clock import ClockRefused, process_clock


def test_a_test_stack_runs_on_the_instant_it_was_given() -> None:
    env = {"TEST_CLOCK": "2028-02-29T23:59:00+08:00", "PYTEST_VERSION": "9"}
    clock = process_clock("Asia/Shanghai", env)
    assert clock.now() == datetime.fromisoformat("2028-02-29T23:59:00+08:00")
    assert clock.today().isoformat() == "2028-02-29"
    # the same instant is the next day in a zone east of Shanghai
    assert process_clock("Asia/Tokyo", env).today().isoformat() == "2028-03-01"


def test_a_test_clock_outside_the_tests_is_refused() -> None:
    with pytest.raises(ClockRefused):
        process_clock("Asia/Shanghai", {"TEST_CLOCK": "2028-02-29T23:59:00+08:00"})


def test_without_a_test_clock_a_process_runs_on_the_system_clock() -> None:
    assert process_clock("Asia/Shanghai", {}).fixed is None
