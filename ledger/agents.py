"""Agents: creation with an Argon2 hash, login with lockout after repeated failures."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import lru_cache

from pwdlib import PasswordHash
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.accounts import audit
from ledger.clock import Clock
from ledger.errors import Conflict, LedgerError, NotFound, ValidationFailed
from ledger.models import Agent, AgentToken, Conversation, HandoffTicket

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
ROLES = ("agent", "supervisor")
_hasher = PasswordHash.recommended()  # Argon2id


class LoginFailed(LedgerError):
    code = "login_failed"


class AccountLocked(LedgerError):
    """Kept for the error mapping; login no longer says an account is locked (see authenticate)."""

    code = "account_locked"


def create_agent(
    session: Session, username: str, password: str, display_name: str, actor: str, role: str = "agent"
) -> Agent:
    if len(password) < 10:
        raise ValidationFailed("the password needs at least 10 characters", field="password")
    if role not in ROLES:
        raise ValidationFailed("role is agent or supervisor", field="role")
    agent = Agent(
        username=username,
        display_name=display_name,
        password_hash=_hasher.hash(password),
        failed_logins=0,
        role=role,
    )
    try:
        with session.begin_nested():
            session.add(agent)
    except IntegrityError:
        raise Conflict("that username is taken", username=username) from None
    audit(session, actor, "agent.create", username, role=role)
    return agent


LOGIN_FAILED = "wrong username or password; after repeated failures, try again in 15 minutes"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """An Argon2 hash of nobody's password, with the hasher's own parameters: an unknown or disabled
    username is checked against it, so every failed login costs the same work."""
    return _hasher.hash(secrets.token_urlsafe(24))


def prepare_login() -> None:
    """Compute the dummy hash now (at start-up), so the first failed login costs no more than others."""
    _dummy_hash()


def authenticate(session: Session, username: str, password: str, clock: Clock) -> Agent:
    """The agent if the password is right; failures count, and five in a row lock for 15 minutes.

    Every failure, whether the username is unknown, disabled or locked, or the password wrong,
    raises the same LoginFailed after the same work (one Argon2 verification), so a caller cannot
    tell which usernames exist or are locked. A locked account refuses even its right password."""
    agent = session.scalar(select(Agent).where(Agent.username == username).with_for_update())
    if agent is None or agent.disabled_at is not None:
        _hasher.verify(password, _dummy_hash())
        raise LoginFailed(LOGIN_FAILED)
    now = clock.now()
    ok, new_hash = _hasher.verify_and_update(password, agent.password_hash)
    if agent.locked_until and agent.locked_until > now:
        raise LoginFailed(LOGIN_FAILED)
    if not ok:
        agent.failed_logins += 1
        if agent.failed_logins >= MAX_FAILURES:
            agent.locked_until, agent.failed_logins = now + LOCKOUT, 0
            audit(session, username, "agent.locked", username)
        raise LoginFailed(LOGIN_FAILED)
    agent.failed_logins, agent.locked_until = 0, None
    if new_hash:
        agent.password_hash = new_hash
    return agent


def record_token(session: Session, username: str, jti: str, expires_at: datetime) -> None:
    session.add(AgentToken(jti=jti, username=username, expires_at=expires_at))
    session.flush()


def live_token(session: Session, jti: str, clock: Clock) -> Agent | None:
    """The agent a token (by its id) still speaks for: not revoked, not expired, agent not disabled."""
    row = session.execute(
        select(AgentToken, Agent).join(Agent, Agent.username == AgentToken.username).where(AgentToken.jti == jti)
    ).first()
    if row is None:
        return None
    token, agent = row
    if token.revoked_at is not None or token.expires_at <= clock.now() or agent.disabled_at is not None:
        return None
    return agent


def revoke_token(session: Session, jti: str, clock: Clock) -> None:
    session.execute(
        update(AgentToken).where(AgentToken.jti == jti, AgentToken.revoked_at.is_(None)).values(revoked_at=clock.now())
    )


def disable(session: Session, username: str, actor: str, clock: Clock) -> Agent:
    """The agent can no longer log in, and every token it holds stops working at once."""
    agent = session.scalar(select(Agent).where(Agent.username == username).with_for_update())
    if agent is None:
        raise NotFound("no such agent", username=username)
    agent.disabled_at = agent.disabled_at or clock.now()
    session.execute(
        update(AgentToken)
        .where(AgentToken.username == username, AgentToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    audit(session, actor, "agent.disable", username)
    return agent


def may_read(session: Session, role: str, username: str, conversation_id: str) -> bool:
    """Supervisors (and the admin) read every conversation; an agent only one it has claimed."""
    if role in ("supervisor", "admin"):
        return True
    claimed = session.scalar(
        select(HandoffTicket.id)
        .join(Conversation, HandoffTicket.conversation_pk == Conversation.id)
        .where(
            Conversation.conversation_id == conversation_id,
            HandoffTicket.status == "claimed",
            HandoffTicket.agent == username,
        )
        .limit(1)
    )
    return claimed is not None
