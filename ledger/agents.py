"""Agents: creation with an Argon2 hash, login with lockout after repeated failures."""

from __future__ import annotations

from datetime import timedelta

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.accounts import audit
from ledger.clock import Clock
from ledger.errors import Conflict, LedgerError, ValidationFailed
from ledger.models import Agent

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
_hasher = PasswordHash.recommended()  # Argon2id


class LoginFailed(LedgerError):
    code = "login_failed"
    status = 401


class AccountLocked(LedgerError):
    code = "account_locked"
    status = 423


def create_agent(session: Session, username: str, password: str, display_name: str, actor: str) -> Agent:
    if len(password) < 10:
        raise ValidationFailed("the password needs at least 10 characters", field="password")
    agent = Agent(username=username, display_name=display_name, password_hash=_hasher.hash(password), failed_logins=0)
    try:
        with session.begin_nested():
            session.add(agent)
    except IntegrityError:
        raise Conflict("that username is taken", username=username) from None
    audit(session, actor, "agent.create", username)
    return agent


def authenticate(session: Session, username: str, password: str, clock: Clock) -> Agent:
    """The agent if the password is right; failures count, and five in a row lock for 15 minutes."""
    agent = session.scalar(select(Agent).where(Agent.username == username).with_for_update())
    if agent is None:
        _hasher.hash(password)  # same work either way, so timing does not reveal which usernames exist
        raise LoginFailed("wrong username or password")
    now = clock.now()
    if agent.locked_until and agent.locked_until > now:
        raise AccountLocked("too many failed logins; try again later", until=agent.locked_until.isoformat())
    ok, new_hash = _hasher.verify_and_update(password, agent.password_hash)
    if not ok:
        agent.failed_logins += 1
        if agent.failed_logins >= MAX_FAILURES:
            agent.locked_until, agent.failed_logins = now + LOCKOUT, 0
            audit(session, username, "agent.locked", username)
        raise LoginFailed("wrong username or password")
    agent.failed_logins, agent.locked_until = 0, None
    if new_hash:
        agent.password_hash = new_hash
    return agent
