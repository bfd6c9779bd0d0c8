"""Rate limits on public endpoints, per client address (slowapi; in-memory, or Redis when REDIS_URL is set)."""

from __future__ import annotations

from slowapi import Limiter
from slowapi.util import get_remote_address

from ledger.settings import get_settings


def _storage() -> str:
    return get_settings().redis_url or "memory://"


# With Redis away, limits are counted in this process's memory until it answers again.
limiter = Limiter(
    key_func=get_remote_address, storage_uri=_storage(), headers_enabled=False, in_memory_fallback_enabled=True
)


def public_limit() -> str:
    return f"{get_settings().rate_limit_per_minute}/minute"


def login_limit() -> str:
    return "10/minute"
