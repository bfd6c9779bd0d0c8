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


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.mark.parametrize(
    "redis_url", ["redis://127.0.0.1:6379/3", "redis://127.0.0.1:9/0"], ids=["redis", "redis-away"]
)
def test_turns_are_counted_in_redis_and_in_memory_while_it_is_away(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    """Turns counted per conversation: the fourth in a minute of three is refused, whether Redis
    holds the counts or is away (then this process counts them, and the turn is not refused for it)."""
    import asyncio
    import uuid

    from starlette.requests import Request

    from api.errors import ApiError
    from api.limits import count_turn

    if "6379" in redis_url and not _redis_answers():
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "3")
    get_settings.cache_clear()
    conversation = f"limit-{uuid.uuid4().hex}"
    request = Request({"type": "http", "client": (f"10.9.{uuid.uuid4().int % 250}.1", 1), "headers": []})

    async def four() -> list[str]:
        answers = []
        for _ in range(4):
            try:
                await count_turn(request, conversation)
                answers.append("ok")
            except ApiError as exc:
                answers.append(exc.code)
        return answers

    try:
        assert asyncio.run(four()) == ["ok", "ok", "ok", "rate_limited"]
    finally:
        get_settings.cache_clear()
