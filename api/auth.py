"""Agent tokens (JWT, HS256, expiring) and the dependencies that check them."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Header

from api.deps import SettingsDep
from api.errors import ApiError
from ledger.clock import Clock, process_clock
from ledger.settings import Settings

TOKEN_LIFETIME = timedelta(hours=8)
ALGORITHM = "HS256"


def issue_token(username: str, settings: Settings, clock: Clock) -> str:
    now = clock.now()
    claims = {
        "sub": username,
        "role": "agent",
        "iat": int(now.timestamp()),
        "exp": int((now + TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def _key(settings: Settings) -> str:
    key = settings.agent_jwt_key.get_secret_value()
    if not key:
        raise ApiError(503, "not_configured", "agent login is not configured (AGENT_JWT_KEY)")
    return key


def agent_from_token(token: str, settings: Settings) -> str | None:
    # Expiry is checked against the app's clock (the one that issued it), not PyJWT's wall clock.
    try:
        claims = jwt.decode(
            token,
            _key(settings),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    if int(claims["exp"]) <= process_clock(settings.app_timezone).now().timestamp():
        return None
    return str(claims["sub"]) if claims.get("role") == "agent" else None


def _bearer(authorization: str | None) -> str:
    return (authorization or "").removeprefix("Bearer ").strip()


def current_agent(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> str:
    username = agent_from_token(_bearer(authorization), settings)
    if username is None:
        raise ApiError(401, "unauthorized", "a valid agent token is required")
    return username


def admin_or_agent(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> str:
    token = _bearer(authorization)
    admin = settings.admin_api_token.get_secret_value()
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return "admin"
    username = agent_from_token(token, settings)
    if username is None:
        raise ApiError(401, "unauthorized", "an admin or agent token is required")
    return username


AgentDep = Annotated[str, Depends(current_agent)]
AdminOrAgentDep = Depends(admin_or_agent)
