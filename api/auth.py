"""Agent tokens (JWT, HS256, expiring, revocable) and the dependencies that check them.

A token names its agent and its id (`jti`); the id is recorded when the token is issued, so
logging out or disabling the agent ends it at once. The role is read from the database on
every call, never trusted from the token.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import jwt
from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from api.chat import chat_service
from api.deps import AdminCredentials, DatabaseDep, SettingsDep
from api.errors import ApiError
from ledger import agents
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.models import Agent
from settings import Settings

TOKEN_LIFETIME = timedelta(hours=8)
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an agent or supervisor (with the token's id and expiry), or the admin."""

    username: str
    role: str  # agent | supervisor | admin
    jti: str = ""
    expires_at: datetime | None = None


def issue_token(session: Session, agent: Agent, settings: Settings, clock: Clock) -> str:
    now = clock.now()
    expires, jti = now + TOKEN_LIFETIME, uuid.uuid4().hex
    agents.record_token(session, agent.username, jti, expires)
    claims = {
        "sub": agent.username,
        "role": agent.role,
        "jti": jti,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def _key(settings: Settings) -> str:
    key = settings.agent_jwt_key.get_secret_value()
    if not key:
        raise ApiError(503, "not_configured", "agent login is not configured (AGENT_JWT_KEY)")
    return key


def principal_from_token(token: str, db: Database, settings: Settings, clock: Clock | None = None) -> Principal | None:
    """The agent a token speaks for, if it is authentic, unexpired and not revoked.

    Expiry is checked against the app's clock (the one that issued it), not PyJWT's wall clock."""
    try:
        claims = jwt.decode(
            token,
            _key(settings),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "jti"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    clock = clock or process_clock(settings.app_timezone)
    if int(claims["exp"]) <= clock.now().timestamp():
        return None
    with db.transaction(readonly=True) as session:
        agent = agents.live_token(session, str(claims["jti"]), clock)
        if agent is None or agent.username != claims["sub"]:
            return None
        return Principal(agent.username, agent.role, str(claims["jti"]), datetime.fromtimestamp(claims["exp"], UTC))


ConsoleAccess = Literal["ok", "token_ended", "not_claimed"]


async def console_still_authorised(
    db: Database, principal: Principal, conversation_id: str | None, clock: Clock
) -> ConsoleAccess:
    """Whether an agent console may still be handed an event: its token is live (not logged out,
    not expired, the agent not disabled: else "token_ended") and, for a conversation's event, the
    agent may read that conversation now (claimed by it, or a supervisor: else "not_claimed").
    Asked again at every event a socket delivers, so a release, a reassignment, a logout or a
    disable ends delivery at once, whichever gateway worker it happened on."""

    def check(session: Session) -> ConsoleAccess:
        agent = agents.live_token(session, principal.jti, clock)
        if agent is None or agent.username != principal.username:
            return "token_ended"
        if conversation_id is None or agents.may_read(session, agent.role, agent.username, conversation_id):
            return "ok"
        return "not_claimed"

    return await db.run(check, readonly=True)


agent_bearer = OAuth2PasswordBearer(
    tokenUrl="/v1/agent/login", scheme_name="agent", description="an agent's or supervisor's token", auto_error=False
)
AgentToken = Annotated[str | None, Depends(agent_bearer)]


def current_principal(settings: SettingsDep, db: DatabaseDep, token: AgentToken) -> Principal:
    principal = principal_from_token(token or "", db, settings)
    if principal is None:
        raise ApiError(401, "unauthorized", "a valid agent token is required")
    return principal


def current_agent(principal: Annotated[Principal, Depends(current_principal)]) -> str:
    return principal.username


def admin_or_principal(
    settings: SettingsDep, db: DatabaseDep, admin_token: AdminCredentials, token: AgentToken
) -> Principal:
    admin = settings.admin_api_token.get_secret_value()
    given = admin_token.credentials if admin_token else ""
    if admin and hmac.compare_digest(given.encode(), admin.encode()):
        return Principal("admin", "admin")
    principal = principal_from_token(token or "", db, settings)
    if principal is None:
        raise ApiError(401, "unauthorized", "an admin or agent token is required")
    return principal


def admin_or_agent(principal: Annotated[Principal, Depends(admin_or_principal)]) -> str:
    return principal.username


AgentDep = Annotated[str, Depends(current_agent)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
AdminOrPrincipalDep = Annotated[Principal, Depends(admin_or_principal)]
AdminOrAgentDep = Depends(admin_or_agent)


def bearer(conn: HTTPConnection) -> str:
    """The token of an `Authorization: Bearer ...` header, or ""."""
    header = conn.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


async def authorise_chat(conn: HTTPConnection, conversation_id: str, token: str, activity: bool = False) -> None:
    """401 unless `token` is a live session of this very web conversation (HTTP and WebSocket alike).
    `activity`: the holder is sending a message (a session ends after WEB_SESSION_IDLE_MINUTES without one)."""
    if not await chat_service(conn).authorised(conversation_id, token, activity):
        raise ApiError(401, "unauthorized", "a valid session token for this conversation is required")
