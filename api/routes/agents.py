"""Agents: accounts (admin), login, the queue, claim, reply, notes, plan approval, release."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.auth import AgentDep, PrincipalDep, issue_token
from api.chat import ChatDep, ChatService
from api.deps import AdminDep, ClockDep, PolicyDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.hub import AGENT_TOKENS_TOPIC, QUEUE_TOPIC, conversation_topic
from api.limits import limiter, login_limit
from api.views import account_public
from ledger import accounts, agents, handoff, negotiation
from ledger.db import run_transaction, transaction
from ledger.errors import LedgerError
from ledger.masking import mask
from ledger.money import fen_to_yuan

router = APIRouter(tags=["agents"])


class AgentCreate(BaseModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{3,64}$")
    password: str = Field(min_length=10, max_length=256)
    display_name: str = Field(min_length=1, max_length=64)
    role: Literal["agent", "supervisor"] = "agent"


class AgentPublic(BaseModel):
    username: str
    display_name: str
    role: str = "agent"


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class TextIn(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


@router.post("/v1/agents", status_code=status.HTTP_201_CREATED, response_model=AgentPublic, dependencies=[AdminDep])
def create_agent(body: AgentCreate, session: SessionDep) -> AgentPublic:
    agent = agents.create_agent(session, body.username, body.password, body.display_name, "admin", body.role)
    return AgentPublic(username=agent.username, display_name=agent.display_name, role=agent.role)


@router.post("/v1/agents/{username}/disable", response_model=AgentPublic, dependencies=[AdminDep])
def disable_agent(username: str, chat: ChatDep, session: SessionDep, clock: ClockDep) -> AgentPublic:
    """The agent cannot log in again; its tokens stop working and its open consoles are closed."""
    agent = agents.disable(session, username, "admin", clock)
    chat.hub.publish(AGENT_TOKENS_TOPIC, {"type": "revoked", "username": username})
    return AgentPublic(username=agent.username, display_name=agent.display_name, role=agent.role)


@router.post("/v1/agent/login", response_model=Token)
@limiter.limit(login_limit)
def login(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], settings: SettingsDep, clock: ClockDep
) -> Token:
    failure: LedgerError | None = None
    token = ""
    with transaction(settings.database_url) as session:  # a failed attempt is counted even though login fails
        try:
            agent = agents.authenticate(session, form.username, form.password, clock)
            token = issue_token(session, agent, settings, clock)
        except (agents.LoginFailed, agents.AccountLocked) as exc:
            failure = exc
    if failure is not None:
        raise failure
    return Token(access_token=token)


@router.post("/v1/agent/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: PrincipalDep, chat: ChatDep, session: SessionDep, clock: ClockDep) -> None:
    """This token stops working now, here and in any console that uses it."""
    agents.revoke_token(session, principal.jti, clock)
    chat.hub.publish(AGENT_TOKENS_TOPIC, {"type": "revoked", "jti": principal.jti})


@router.get("/v1/agent/queue")
def queue(principal: PrincipalDep, session: SessionDep, policy: PolicyDep, clock: ClockDep) -> list[dict[str, Any]]:
    """What waits for a person; an agent sees, beyond it, only what it has claimed itself."""
    now = clock.now()
    items = []
    for item in handoff.queue(session):
        if principal.role != "supervisor" and item.status == "claimed" and item.agent != principal.username:
            continue
        summary = None
        if item.account_id:
            view = accounts.account_view(session, item.account_id, policy, clock)
            summary = {
                "account_id": item.account_id,
                "bucket": view.position.bucket,
                "overdue_days": view.position.overdue_days,
                "amount_due": fen_to_yuan(view.position.amount_due.total),
                "outstanding": fen_to_yuan(view.position.outstanding.total),
                "flags": view.flags,
            }
        items.append(
            {
                "conversation_id": item.conversation_id,
                "channel": item.channel,
                "reason": item.reason,
                "priority": item.priority,
                "summary": mask(item.summary),
                "status": item.status,
                "agent": item.agent,
                "waiting_seconds": int((now - item.created_at).total_seconds()),
                "created_at": item.created_at.isoformat(),
                "account": summary,
                "last_messages": [{"sender": s, "text": mask(t)} for s, t in item.last_messages],
            }
        )
    return items


@router.get("/v1/agent/conversations/{conversation_id}")
def conversation(
    conversation_id: str, principal: PrincipalDep, session: SessionDep, policy: PolicyDep, clock: ClockDep
) -> dict[str, Any]:
    """Everything at a glance: transcript, account and breakdown, allowed offers, notes.
    An agent reads only a conversation it has claimed; verification facts are never shown."""
    from api.routes.transcripts import transcript
    from ledger import conversations as convs

    record = transcript(conversation_id, session, principal)
    account_id = convs.verified_account_id(session, conversation_id)
    detail: dict[str, Any] = {
        "transcript": record.model_dump(),
        "account": None,
        "offers": [],
        "notes": [
            {"agent": n.agent, "text": n.text, "at": n.created_at.isoformat()}
            for n in handoff.notes(session, conversation_id)
        ],
    }
    if account_id:
        view = accounts.account_view(session, account_id, policy, clock)
        public = account_public(view, policy).model_dump(mode="json")
        public.update(id_last4="****", card_last4="****", phone=mask(str(public.get("phone", ""))))
        detail["account"] = public
        sit = negotiation.situation(session, account_id, policy, clock)
        detail["offers"] = [
            {
                "periods": o.periods,
                "per_period": fen_to_yuan(o.first_amount),
                "total_fee": fen_to_yuan(o.total_fee),
                "apr": f"{o.apr:.4f}",
            }
            for o in negotiation.installment_offers(sit, clock.today())
        ]
    return detail


@router.post("/v1/agent/conversations/{conversation_id}/claim")
async def claim(conversation_id: str, agent: AgentDep, chat: ChatDep, session: SessionDep) -> dict[str, str]:
    ticket = handoff.claim(session, conversation_id, agent)
    chat.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})
    return {"conversation_id": conversation_id, "status": ticket.status, "agent": agent}


@router.post("/v1/agent/conversations/{conversation_id}/messages")
async def reply(conversation_id: str, body: TextIn, agent: AgentDep, chat: ChatDep) -> dict[str, Any]:
    sent = await chat.agent_says(conversation_id, agent, body.text)
    return {"seq": sent.seq, "text": sent.text, "sender": "agent"}


@router.post("/v1/agent/conversations/{conversation_id}/notes", status_code=status.HTTP_201_CREATED)
def add_note(
    conversation_id: str, body: TextIn, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> dict[str, str]:
    if not agents.may_read(session, principal.role, principal.username, conversation_id):
        raise ApiError(404, "not_found", "no such conversation, or not one you have claimed")
    note = handoff.add_note(session, conversation_id, principal.username, body.text, clock)
    return {"agent": note.agent, "text": note.text}


@router.post("/v1/agent/plans/{plan_id}/approve")
def approve(plan_id: str, agent: AgentDep, session: SessionDep) -> dict[str, str]:
    plan = negotiation.approve_plan(session, plan_id, agent)
    return {"plan_id": plan.plan_id, "status": plan.status, "approved_by": agent}


async def _release(
    conversation_id: str, agent: str, chat: ChatService, settings: Any, resolved: bool
) -> dict[str, Any]:
    await run_transaction(settings.database_url, lambda s: handoff.release(s, conversation_id, agent, resolved))
    resumed = await chat.resume_bot(conversation_id)
    chat.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})
    chat.hub.publish(conversation_topic(conversation_id), {"type": "mode", "mode": "bot"})
    return {"conversation_id": conversation_id, "mode": "bot", "bot_resumed": resumed}


@router.post("/v1/agent/conversations/{conversation_id}/release")
async def release(conversation_id: str, agent: AgentDep, chat: ChatDep, settings: SettingsDep) -> dict[str, Any]:
    return await _release(conversation_id, agent, chat, settings, resolved=False)


@router.post("/v1/agent/conversations/{conversation_id}/close")
async def close(conversation_id: str, agent: AgentDep, chat: ChatDep, settings: SettingsDep) -> dict[str, Any]:
    return await _release(conversation_id, agent, chat, settings, resolved=True)
