"""Rate limits on public endpoints, per client address (slowapi; in-memory, or Redis when REDIS_URL is set).

The client address is the peer's, unless the peer is a proxy named in TRUSTED_PROXIES: then it
is the right-most X-Forwarded-For entry that is not itself a trusted proxy. Anyone else can
write any X-Forwarded-For they like, so it is never believed from them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import weakref
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter as AsyncFixedWindow
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError
from slowapi import Limiter
from starlette.requests import HTTPConnection

from api.errors import ApiError
from settings import get_settings

log = logging.getLogger(__name__)


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory counters, with expired ones swept by the caller at most once a second.

    The stock storage starts a timer thread on nearly every hit, to sweep 10 ms later: every
    message cost the gateway a new OS thread, which the event loop waited to see started
    (docs/performance.md). The fixed-window strategy (slowapi's default, used here) counts
    through `incr` and reads through `get`, which drops an expired counter itself; so only
    `incr` changes, and it still starts from `get`. Counters still go once their window has
    passed: memory stays bounded.
    """

    STORAGE_SCHEME = ["swept-memory"]  # noqa: RUF012 - limits reads it as a class attribute: the scheme names this class
    SWEEP_EVERY = 1.0  # seconds

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = 0.0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_EVERY
            self._sweep(now)
        self.get(key)  # drops this key's counter if its window has passed, as the stock incr does
        with self.locks[key]:
            self.storage[key] += amount
            if self.storage[key] == amount:
                self.expirations[key] = now + expiry
            return self.storage[key]

    def _sweep(self, now: float) -> None:
        for key, until in list(self.expirations.items()):
            if until <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


def _storage() -> str:
    return get_settings().redis_url or "swept-memory://"


@lru_cache(maxsize=8)
def _trusted(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def _is_trusted(address: str, spec: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _trusted(spec))


def client_address(request: HTTPConnection) -> str:
    """The address limits are counted against (HTTP requests and WebSockets alike).
    (The parameter's name is how slowapi knows to pass the request.)"""
    conn = request
    peer = conn.client.host if conn.client else "unknown"
    spec = get_settings().trusted_proxies
    if not spec or not _is_trusted(peer, spec):
        return peer
    hops = [h.strip() for h in conn.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, spec):
            return hop
    return hops[0] if hops else peer


# With Redis away, limits are counted in this process's memory until it answers again.
limiter = Limiter(
    key_func=client_address, storage_uri=_storage(), headers_enabled=False, in_memory_fallback_enabled=True
)


def public_limit() -> str:
    return f"{get_settings().rate_limit_per_minute}/minute"


def provider_limit() -> str:
    """The SMS and voice webhooks: every holder's messages and call turns come from the provider's
    few addresses, so the public per-address limit would refuse a busy afternoon's calls."""
    return f"{get_settings().provider_webhook_per_minute}/minute"


def login_limit() -> str:
    return "10/minute"


@lru_cache(maxsize=8)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)


async def count_turn(conn: HTTPConnection, conversation_id: str) -> None:
    """One holder message, by HTTP or WebSocket: counted per address and per conversation.

    With Redis the two counts are awaited together (`limits.aio` on redis.asyncio): slowapi's
    client waited for Redis twice a turn with the gateway's event loop stopped. With Redis away,
    the turn is counted in this process's memory instead of failing."""
    item = _parsed(public_limit())  # read per turn (tests change the setting), parsed once
    keys = (("turn-address", client_address(conn)), ("turn-conversation", conversation_id))
    url = get_settings().redis_url
    counted: list[bool] | None = None
    if url:
        try:
            backend = _async_backend(url)
            counted = list(await asyncio.gather(*(backend.hit(item, scope, key) for scope, key in keys)))
        except (RedisError, OSError) as exc:
            log.warning("turn counted in memory: Redis away", extra={"reason": type(exc).__name__})
    if counted is None:
        memory = _memory_backend() if url else limiter.limiter
        counted = [memory.hit(item, scope, key) for scope, key in keys]
    if not all(counted):
        raise ApiError(429, "rate_limited", "too many requests; please slow down", limit=str(item))


_async_backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncFixedWindow] = weakref.WeakKeyDictionary()


def _async_backend(url: str) -> AsyncFixedWindow:
    """The fixed window slowapi counts in, on Redis through redis.asyncio: one per event loop (an
    asyncio client belongs to the loop it was made on)."""
    loop = asyncio.get_running_loop()
    if loop not in _async_backends:
        _async_backends[loop] = AsyncFixedWindow(
            storage_from_string(f"async+{url}", implementation="redispy", socket_connect_timeout=2, socket_timeout=2)
        )
    return _async_backends[loop]


@lru_cache(maxsize=1)
def _memory_backend() -> FixedWindowRateLimiter:
    return FixedWindowRateLimiter(SweptMemoryStorage())
