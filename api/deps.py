"""Injected dependencies: settings, policy, clock, a database session per request, admin auth."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy.orm import Session

from api.errors import ApiError
from ledger.clock import Clock, process_clock
from ledger.db import session_factory
from ledger.policy import Policy, cached_policy
from settings import Settings, get_settings


def settings_dep() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]


def policy_dep(settings: SettingsDep) -> Policy:
    return cached_policy(str(settings.policy_path))


def clock_dep(settings: SettingsDep) -> Clock:
    return process_clock(settings.app_timezone)


def session_dep(settings: SettingsDep) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    with session_factory(settings.database_url).begin() as session:
        yield session


PolicyDep = Annotated[Policy, Depends(policy_dep)]
ClockDep = Annotated[Clock, Depends(clock_dep)]
SessionDep = Annotated[Session, Depends(session_dep)]


def require_admin(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    expected = settings.admin_api_token.get_secret_value()
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "a valid admin token is required")


AdminDep = Depends(require_admin)
