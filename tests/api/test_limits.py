"""The in-memory rate-limit counters (no REDIS_URL): correct, bounded, and no thread per message."""

from __future__ import annotations

import threading
import time

import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from api.limits import SweptMemoryStorage, _storage
from settings import get_settings


def test_without_redis_the_gateway_counts_in_swept_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert _storage() == "swept-memory://"
    finally:
        get_settings.cache_clear()


def test_counting_messages_starts_no_thread_and_forgets_ended_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000.0]  # the limiter's clock, moved by hand: no wall clock
    monkeypatch.setattr(time, "time", lambda: now[0])
    storage = SweptMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    three = parse("3/minute")
    started: list[threading.Thread] = []
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread))

    assert [limiter.hit(three, "turn", "c1") for _ in range(4)] == [True, True, True, False]
    for i in range(100):
        assert limiter.hit(three, "turn", f"other-{i}")
    assert started == []  # the stock in-memory storage starts a timer thread on a hit

    now[0] += 61  # the minute has passed
    assert limiter.hit(three, "turn", "c1")  # a new window for c1
    assert len(storage.storage) == 1  # the 100 ended counters are gone, not kept for ever
    assert limiter.get_window_stats(three, "turn", "c1").remaining == 2
