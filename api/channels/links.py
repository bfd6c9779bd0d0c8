"""Signed, expiring chat links for outbound SMS: short enough for one message, useless when altered.

A token names a contact attempt and an expiry, with an HMAC-SHA256 tag (16 bytes) keyed by
LINK_SIGNING_KEY: `<attempt>.<expires>.<tag>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

LINK_LIFETIME = timedelta(hours=72)


def _tag(key: str, body: str) -> str:
    mac = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue(attempt_id: int, key: str, now: datetime, lifetime: timedelta = LINK_LIFETIME) -> str:
    body = f"{attempt_id}.{int((now + lifetime).timestamp())}"
    return f"{body}.{_tag(key, body)}"


def verify(token: str, key: str, now: datetime) -> int | None:
    """The attempt id if the token is authentic and unexpired, else None."""
    try:
        attempt, expires, tag = token.split(".")
        attempt_id, expires_at = int(attempt), int(expires)
    except ValueError:
        return None
    if not key or not hmac.compare_digest(_tag(key, f"{attempt}.{expires}"), tag):
        return None
    return attempt_id if now.timestamp() < expires_at else None


def expiry(token: str) -> datetime | None:
    """When the token stops opening anything (read from the token; authenticity is verify's job)."""
    try:
        _, expires, _ = token.split(".")
        return datetime.fromtimestamp(int(expires), tz=UTC)
    except (ValueError, OverflowError):
        return None
