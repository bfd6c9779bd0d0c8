"""Injected dependencies: settings, policy, clock, the process's Database and a session per request,
admin auth. Tests replace `database_dep` through `app.dependency_overrides`."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from api.errors import ApiError
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.policy import Policy, cached_policy
from settings import Settings, get_settings


def settings_dep() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]


def policy_dep(settings: SettingsDep) -> Policy:
    return cached_policy(str(settings.policy_path))


def clock_dep(settings: SettingsDep) -> Clock:
    return process_clock(settings.app_timezone)


def database_dep(conn: HTTPConnection) -> Database:
    """The Database the app's lifespan built (app.state.db)."""
    return conn.app.state.db  # type: ignore[no-any-return]


DatabaseDep = Annotated[Database, Depends(database_dep)]


def session_dep(db: DatabaseDep) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error.

    Declared with `scope="function"` (SessionDep): the commit runs before the response is sent,
    so a 2xx means the write is in the database, and a commit that fails is the caller's 5xx.
    (A yield dependency of FastAPI's default "request" scope ends after the response is sent.)

    Only for sync (`def`) routes, which FastAPI runs in its thread pool; an async route uses
    `await db.run(...)` instead."""
    with db.transaction() as session:
        yield session


PolicyDep = Annotated[Policy, Depends(policy_dep)]
ClockDep = Annotated[Clock, Depends(clock_dep)]
SessionDep = Annotated[Session, Depends(session_dep, scope="function")]


admin_bearer = HTTPBearer(scheme_name="admin", description="ADMIN_API_TOKEN", auto_error=False)
AdminCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)]


def require_admin(settings: SettingsDep, credentials: AdminCredentials) -> None:
    expected = settings.admin_api_token.get_secret_value()
    given = credentials.credentials if credentials else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "a valid admin token is required")


AdminDep = Depends(require_admin)
