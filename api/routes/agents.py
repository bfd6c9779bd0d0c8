"""Agents: accounts (admin), login, the queue, claim, reply, notes, plan approval, release."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, status
from sqlalchemy.orm import Session

from api.auth import AgentDep, PrincipalDep, issue_token
from api.chat import ChatDep, ChatService
from api.deps import AdminDep, ClockDep, DatabaseDep, PolicyDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.hub import AGENT_TOKENS_TOPIC, QUEUE_TOPIC, conversation_topic
from api.limits import limiter, login_limit
from api.schemas import (
    CONVERSATION_ID_PATTERN,
    ID_PATTERN,
    AgentCreate,
    AgentMessage,
    AgentPublic,
    Claimed,
    ClaimSummaryOut,
    ConversationDetail,
    LoginForm,
    NoteAdded,
    PlanApproval,
    PlanApproved,
    PresenceIn,
    PresenceOut,
    QueueItem,
    Released,
    TextIn,
    Token,
    errors,
)
from api.schemas.agents import USERNAME_PATTERN
from api.schemas.links import link
from api.views import account_public, transcript_for
from ledger import accounts, agents, duty, handoff, negotiation
from ledger.clock import Clock
from ledger.db import Database
from ledger.errors import LedgerError
from ledger.masking import mask
from ledger.money import fen_to_yuan
from ledger.policy import Policy

router = APIRouter(tags=["agents"], responses=errors(401, 422, 503))
ConversationId = Annotated[str, Path(pattern=CONVERSATION_ID_PATTERN)]
FROM_CLAIM = {
    name: link(name, conversation_id="$response.body#/conversation_id")
    for name in ("agent_reply", "add_note", "release", "close", "agent_conversation")
}
FROM_QUEUE = {
    "claim": link("claim", conversation_id="$response.body#/0/conversation_id"),
    "conversation": link("agent_conversation", conversation_id="$response.body#/0/conversation_id"),
}


@router.post(
    "/v1/agents",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentPublic,
    dependencies=[AdminDep],
    responses={
        201: {"links": {"disable": link("disable_agent", username="$response.body#/username")}},
        **errors(400, 409, 413),
    },
)
def create_agent(body: AgentCreate, session: SessionDep) -> AgentPublic:
    agent = agents.create_agent(session, body.username, body.password, body.display_name, "admin", body.role)
    return AgentPublic(username=agent.username, display_name=agent.display_name, role=agent.role)


@router.post(
    "/v1/agents/{username}/disable", response_model=AgentPublic, dependencies=[AdminDep], responses=errors(404)
)
async def disable_agent(
    username: Annotated[str, Path(pattern=USERNAME_PATTERN)], chat: ChatDep, db: DatabaseDep, clock: ClockDep
) -> AgentPublic:
    """The agent cannot log in again; its tokens stop working and its open consoles are closed."""

    def disable(session: Session) -> AgentPublic:
        agent = agents.disable(session, username, "admin", clock)
        return AgentPublic(username=agent.username, display_name=agent.display_name, role=agent.role)

    public = await db.run(disable)
    chat.hub.publish(AGENT_TOKENS_TOPIC, {"type": "revoked", "username": username})
    return public


@router.post("/v1/agent/login", response_model=Token, responses=errors(413, 429))
@limiter.limit(login_limit)
def login(
    request: Request, form: Annotated[LoginForm, Form()], settings: SettingsDep, db: DatabaseDep, clock: ClockDep
) -> Token:
    """401 login_failed for every failure alike (unknown or disabled username, wrong password, an
    account locked after five failures), so the answer names no username."""
    failure: LedgerError | None = None
    token = ""
    with db.transaction() as session:  # a failed attempt is counted even though login fails
        try:
            agent = agents.authenticate(session, form.username, form.password, clock)
            token = issue_token(session, agent, settings, clock)
        except (agents.LoginFailed, agents.AccountLocked) as exc:
            failure = exc
    if failure is not None:
        raise failure
    return Token(access_token=token)


@router.post("/v1/agent/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: PrincipalDep, chat: ChatDep, db: DatabaseDep, clock: ClockDep) -> None:
    """This token stops working now, here and in any console that uses it."""
    await db.run(lambda s: agents.revoke_token(s, principal.jti, clock))
    chat.hub.publish(AGENT_TOKENS_TOPIC, {"type": "revoked", "jti": principal.jti})


@router.get("/v1/agent/queue", response_model=list[QueueItem], responses={200: {"links": FROM_QUEUE}})
def queue(principal: PrincipalDep, session: SessionDep, policy: PolicyDep, clock: ClockDep) -> list[QueueItem]:
    """What waits for a person, oldest first; an agent sees, beyond it, only what it has claimed itself."""
    now = clock.now()
    items = []
    for item in handoff.queue(session):
        if principal.role != "supervisor" and item.status == "claimed" and item.agent != principal.username:
            continue
        summary = _account_summary(session, item.account_id, policy, clock)
        items.append(
            QueueItem.model_validate(
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
                    "holder_waiting": item.parked and item.status == "waiting",
                    "callback_at": item.callback_at.isoformat() if item.callback_at else None,
                }
            )
        )
    return items


def _account_summary(session: Session, account_id: str | None, policy: Policy, clock: Clock) -> dict[str, Any] | None:
    """The account at a glance, only for a holder who verified."""
    if not account_id:
        return None
    view = accounts.account_view(session, account_id, policy, clock)
    return {
        "account_id": account_id,
        "bucket": view.position.bucket,
        "overdue_days": view.position.overdue_days,
        "amount_due": fen_to_yuan(view.position.amount_due.total),
        "outstanding": fen_to_yuan(view.position.outstanding.total),
        "flags": view.flags,
    }


@router.get("/v1/agent/conversations/{conversation_id}", response_model=ConversationDetail, responses=errors(404))
def agent_conversation(
    conversation_id: ConversationId, principal: PrincipalDep, session: SessionDep, policy: PolicyDep, clock: ClockDep
) -> ConversationDetail:
    """Everything at a glance: transcript, account and breakdown, allowed offers, notes.
    An agent reads only a conversation it has claimed; verification facts are never shown."""
    from ledger import conversations as convs

    record = transcript_for(session, conversation_id, principal.role, principal.username)
    account_id = convs.verified_account_id(session, conversation_id)
    detail: dict[str, Any] = {
        "transcript": record,
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
    return ConversationDetail.model_validate(detail)


@router.post(
    "/v1/agent/conversations/{conversation_id}/claim",
    response_model=Claimed,
    responses={200: {"links": FROM_CLAIM}, **errors(404, 409)},
)
async def claim(
    conversation_id: ConversationId, agent: AgentDep, chat: ChatDep, db: DatabaseDep, policy: PolicyDep, clock: ClockDep
) -> Claimed:
    """The conversation is the agent's; the answer carries the account (when the holder verified)
    and a short summary of what was asked, offered and refused and the holder's situation."""
    from ledger import conversations as convs

    def take(session: Session) -> Claimed:
        handoff.claim(session, conversation_id, agent, at=clock.now())
        found = handoff.claim_summary(session, conversation_id)
        account_id = convs.verified_account_id(session, conversation_id)
        return Claimed.model_validate(
            {
                "conversation_id": conversation_id,
                "status": "claimed",
                "agent": agent,
                "account": _account_summary(session, account_id, policy, clock),
                "summary": ClaimSummaryOut(
                    asked=found.asked,
                    offered=found.offered,
                    refused=found.refused,
                    situation=found.situation,
                    callback_at=found.callback_at.isoformat() if found.callback_at else None,
                ),
            }
        )

    claimed = await db.run(take)
    chat.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})
    chat.hub.publish(conversation_topic(conversation_id), {"type": "mode", "mode": "human"})
    return claimed


@router.post("/v1/agent/presence", response_model=PresenceOut, responses=errors(400, 404, 413))
async def presence(
    body: PresenceIn, agent: AgentDep, chat: ChatDep, db: DatabaseDep, policy: PolicyDep, clock: ClockDep
) -> PresenceOut:
    """The agent is available for holders, or away; holders are parked for a person only while
    someone of a team on duty is available (else told when a person will reply)."""

    def mark(session: Session) -> PresenceOut:
        now = clock.now()
        row = handoff.set_presence(session, agent, body.status, now)
        on_duty = row.team in duty.teams_on_duty(policy.handoff, now)
        return PresenceOut(username=row.username, status=body.status, team=row.team, on_duty=on_duty)

    out = await db.run(mark)
    chat.hub.publish(QUEUE_TOPIC, {"type": "presence", "username": agent, "status": body.status})
    return out


@router.post(
    "/v1/agent/conversations/{conversation_id}/messages",
    response_model=AgentMessage,
    responses=errors(400, 404, 409, 413),
)
async def agent_reply(conversation_id: ConversationId, body: TextIn, agent: AgentDep, chat: ChatDep) -> AgentMessage:
    """Delivered on the holder's channel; 422 message_blocked when the guard refuses the text."""
    sent = await chat.agent_says(conversation_id, agent, body.text)
    return AgentMessage(seq=sent.seq, text=sent.text)


@router.post(
    "/v1/agent/conversations/{conversation_id}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=NoteAdded,
    responses=errors(400, 404, 413),
)
def add_note(
    conversation_id: ConversationId, body: TextIn, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> NoteAdded:
    if not agents.may_read(session, principal.role, principal.username, conversation_id):
        raise ApiError(404, "not_found", "no such conversation, or not one you have claimed")
    note = handoff.add_note(session, conversation_id, principal.username, body.text, clock)
    return NoteAdded(agent=note.agent, text=note.text)


@router.post(
    "/v1/agent/plans/{plan_id}/approve", response_model=PlanApproved, responses=errors(400, 403, 404, 409, 413)
)
def approve_plan(
    plan_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: PlanApproval,
    principal: PrincipalDep,
    session: SessionDep,
    policy: PolicyDep,
) -> PlanApproved:
    """A supervisor approves; an agent only a plan of a conversation it holds, within `policy.yml`
    `approval:` (403 approval_not_allowed otherwise). Audited with who approved and why."""
    plan, decision = negotiation.approve_plan(
        session, plan_id, principal.username, principal.role, body.reason, policy.approval
    )
    return PlanApproved.model_validate(
        {
            "plan_id": plan.plan_id,
            "status": plan.status,
            "approved_by": principal.username,
            "basis": decision.basis,
            "reason": body.reason,
        }
    )


async def _release(conversation_id: str, agent: str, chat: ChatService, db: Database, resolved: bool) -> Released:
    await db.run(lambda s: handoff.release(s, conversation_id, agent, resolved, at=chat.clock.now()))
    resumed = await chat.resume_bot(conversation_id)
    chat.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})
    chat.hub.publish(conversation_topic(conversation_id), {"type": "mode", "mode": "bot"})
    return Released(conversation_id=conversation_id, mode="bot", bot_resumed=resumed)


@router.post("/v1/agent/conversations/{conversation_id}/release", response_model=Released, responses=errors(404, 409))
async def release(conversation_id: ConversationId, agent: AgentDep, chat: ChatDep, db: DatabaseDep) -> Released:
    """Back to the bot: the ticket is released (the holder's next message goes to the bot)."""
    return await _release(conversation_id, agent, chat, db, resolved=False)


@router.post("/v1/agent/conversations/{conversation_id}/close", response_model=Released, responses=errors(404, 409))
async def close(conversation_id: ConversationId, agent: AgentDep, chat: ChatDep, db: DatabaseDep) -> Released:
    """Back to the bot, the ticket closed as handled by a person."""
    return await _release(conversation_id, agent, chat, db, resolved=True)
