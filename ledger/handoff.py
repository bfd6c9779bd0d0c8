"""The human queue: tickets waiting for an agent, claiming, releasing back to the bot, notes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import duty
from ledger.accounts import audit
from ledger.clock import Clock
from ledger.errors import Conflict, NotFound, ValidationFailed
from ledger.kinds import Presence
from ledger.masking import mask
from ledger.models import (
    Account,
    Agent,
    AgentNote,
    AuditLog,
    Cardholder,
    ContactPreference,
    Conversation,
    HandoffTicket,
    Message,
    NumberSuppression,
)
from ledger.policy import Policy

OPEN = ("waiting", "claimed")


@dataclass(frozen=True)
class QueueItem:
    conversation_id: str
    channel: str
    reason: str
    priority: int
    summary: str
    status: str
    agent: str | None
    created_at: datetime
    account_id: str | None
    last_messages: list[tuple[str, str]]
    parked: bool = True
    callback_at: datetime | None = None


def queue(session: Session) -> list[QueueItem]:
    """Open tickets, oldest first, each with the last few messages (already masked when stored)."""
    rows = session.execute(
        select(HandoffTicket, Conversation, Account.account_id)
        .join(Conversation, HandoffTicket.conversation_pk == Conversation.id)
        .outerjoin(Account, (Conversation.account_pk == Account.id) & Conversation.verified_at.is_not(None))
        .where(HandoffTicket.status.in_(OPEN))
        .order_by(HandoffTicket.created_at, HandoffTicket.id)
    ).all()
    items = []
    for ticket, conv, account_id in rows:
        last = session.scalars(
            select(Message).where(Message.conversation_pk == conv.id).order_by(Message.seq.desc()).limit(3)
        ).all()
        items.append(
            QueueItem(
                conv.conversation_id,
                conv.channel,
                ticket.reason,
                ticket.priority,
                ticket.summary,
                ticket.status,
                ticket.agent,
                ticket.created_at,
                account_id,
                [(m.sender, m.text) for m in reversed(last)],
                ticket.parked,
                ticket.callback_at,
            )
        )
    return items


def _open_ticket(session: Session, conversation_id: str) -> tuple[Conversation, HandoffTicket]:
    conv = session.scalar(select(Conversation).where(Conversation.conversation_id == conversation_id).with_for_update())
    if conv is None:
        raise NotFound("no such conversation", conversation_id=conversation_id)
    ticket = session.scalar(
        select(HandoffTicket).where(HandoffTicket.conversation_pk == conv.id, HandoffTicket.status.in_(OPEN))
    )
    if ticket is None:
        raise Conflict("the conversation is not waiting for a person", conversation_id=conversation_id)
    return conv, ticket


def claim(session: Session, conversation_id: str, agent: str, at: datetime | None = None) -> HandoffTicket:
    conv, ticket = _open_ticket(session, conversation_id)
    if ticket.status == "claimed" and ticket.agent != agent:
        raise Conflict("another agent has this conversation", agent=ticket.agent)
    if ticket.status != "claimed":
        ticket.claimed_at = at
    ticket.status, ticket.agent, conv.mode = "claimed", agent, "human"
    audit(session, agent, "handoff.claim", conversation_id)
    return ticket


def require_claimed_by(session: Session, conversation_id: str, agent: str) -> Conversation:
    conv, ticket = _open_ticket(session, conversation_id)
    if ticket.status != "claimed" or ticket.agent != agent:
        raise Conflict("claim the conversation first", conversation_id=conversation_id)
    return conv


def release(
    session: Session, conversation_id: str, agent: str, resolved: bool, at: datetime | None = None
) -> Conversation:
    """Hand the conversation back to the bot; `resolved` closes it as handled by a person."""
    conv, ticket = _open_ticket(session, conversation_id)
    if ticket.status == "claimed" and ticket.agent != agent:
        raise Conflict("another agent has this conversation", agent=ticket.agent)
    ticket.status = "closed" if resolved else "released"
    ticket.ended_at = at
    ticket.agent = ticket.agent or agent
    conv.mode = "bot"
    audit(session, agent, "handoff.close" if resolved else "handoff.release", conversation_id)
    return conv


def add_note(session: Session, conversation_id: str, agent: str, text: str, clock: Clock) -> AgentNote:
    conv = session.scalar(select(Conversation).where(Conversation.conversation_id == conversation_id))
    if conv is None:
        raise NotFound("no such conversation", conversation_id=conversation_id)
    note = AgentNote(conversation_pk=conv.id, agent=agent, text=mask(text)[:2000], created_at=clock.now())
    session.add(note)
    session.flush()
    return note


def notes(session: Session, conversation_id: str) -> list[AgentNote]:
    return list(
        session.scalars(
            select(AgentNote)
            .join(Conversation, AgentNote.conversation_pk == Conversation.id)
            .where(Conversation.conversation_id == conversation_id)
            .order_by(AgentNote.id)
        )
    )


SERVICE_UNAVAILABLE = "service_unavailable"  # the bot (Rasa or its actions) did not answer a turn


def waiting_for_the_bot(session: Session) -> list[str]:
    """Conversations handed to people only because the bot was away, and not taken by anyone yet."""
    return list(
        session.scalars(
            select(Conversation.conversation_id)
            .join(HandoffTicket, HandoffTicket.conversation_pk == Conversation.id)
            .where(HandoffTicket.status == "waiting", HandoffTicket.reason == SERVICE_UNAVAILABLE)
            .order_by(HandoffTicket.id)
        )
    )


def return_to_bot(session: Session, conversation_id: str) -> bool:
    """The bot is back: give it the conversation again, unless an agent has taken it (then False)."""
    conv = session.scalar(select(Conversation).where(Conversation.conversation_id == conversation_id).with_for_update())
    if conv is None:
        return False
    ticket = session.scalar(
        select(HandoffTicket).where(HandoffTicket.conversation_pk == conv.id, HandoffTicket.status.in_(OPEN))
    )
    if ticket is None or ticket.status != "waiting" or ticket.reason != SERVICE_UNAVAILABLE:
        return False
    ticket.status, conv.mode = "recovered", "bot"
    audit(session, "gateway", "handoff.recovered", conversation_id)
    return True


# --- duty, waiting and callbacks (decisions in ledger/duty.py) ---

PRESENCE = ("available", "away")


def set_presence(session: Session, username: str, presence: str, at: datetime) -> Agent:
    """An agent says it is available for holders (or away); a console connecting says so too."""
    if presence not in PRESENCE:
        raise ValidationFailed("presence is available or away", field="presence")
    now_is = cast(Presence, presence)  # checked just above
    agent = session.scalar(select(Agent).where(Agent.username == username))
    if agent is None:
        raise NotFound("no such agent", username=username)
    if agent.presence != presence:
        audit(session, username, "agent.presence", username, at=at, presence=presence)
    agent.presence, agent.presence_at = now_is, at
    session.flush()
    return agent


def agents_present(session: Session, teams: frozenset[str]) -> int:
    """Agents of these teams who said they are available (and are not disabled)."""
    if not teams:
        return 0
    return (
        session.scalar(
            select(func.count(Agent.id)).where(
                Agent.presence == "available", Agent.disabled_at.is_(None), Agent.team.in_(teams)
            )
        )
        or 0
    )


def _parked_waiting(session: Session) -> list[int]:
    """Conversation pks of holders parked for a person and not yet taken, in queue order."""
    return list(
        session.scalars(
            select(HandoffTicket.conversation_pk)
            .where(HandoffTicket.status == "waiting", HandoffTicket.parked.is_(True))
            .order_by(HandoffTicket.priority, HandoffTicket.created_at, HandoffTicket.id)
        )
    )


def _open_ticket_of(session: Session, conv_pk: int) -> HandoffTicket | None:
    return session.scalar(
        select(HandoffTicket).where(HandoffTicket.conversation_pk == conv_pk, HandoffTicket.status.in_(OPEN))
    )


def calls_allowed(session: Session, conv: Conversation) -> bool:
    """Whether the number this conversation came from may be called back: only a proven number (a
    verified holder's, an SMS sender's, the one our link or our call went to), and not when its person opted out
    of calls or the number is suppressed for calls (the contact rules' own records)."""
    phone = conv.claimed_phone
    proven = (
        conv.verified_at is not None
        or conv.channel == "sms"
        or conv.conversation_id.startswith("lnk-")
        or (conv.channel == "voice" and conv.phone_proven)  # the number our call reached
    )
    if not phone or not proven:
        return False
    opted_out = session.scalar(
        select(func.count(ContactPreference.id))
        .join(Cardholder, Cardholder.id == ContactPreference.cardholder_id)
        .where(Cardholder.phone == phone, ContactPreference.channel == "calls", ContactPreference.value == "opted_out")
    )
    suppressed = session.scalar(
        select(func.count(NumberSuppression.id)).where(
            NumberSuppression.phone == phone,
            NumberSuppression.channel.in_(("call", "all")),
            NumberSuppression.active.is_(True),
        )
    )
    return not opted_out and not suppressed


def request_person(
    session: Session, conv: Conversation, reason: str, priority: int, summary: str, policy: Policy, now: datetime
) -> duty.HandoffDecision:
    """A holder asks for (or needs) a person: a ticket for agents in every case; the holder is
    parked (the bot quiet) only when someone on duty has room, else the bot keeps serving."""
    present = agents_present(session, duty.teams_on_duty(policy.handoff, now))
    waiting = [pk for pk in _parked_waiting(session) if pk != conv.id]
    decision = duty.decide_handoff(policy.handoff, policy.contact, now, present, len(waiting))
    ticket = _open_ticket_of(session, conv.id)
    callable_back = calls_allowed(session, conv)
    if not callable_back:  # no callback is offered to whom we may not call
        decision = replace(decision, callback_slots=())
    if ticket is not None and ticket.status == "waiting" and ticket.timed_out_at is not None:
        # Already waited out once: the ticket stays for agents, the holder is offered a callback.
        slots = duty.callback_slots(policy.handoff, policy.contact, now) if callable_back else ()
        return duty.HandoffDecision("timed_out", 0, 0, None, slots)
    if ticket is None:
        ticket = HandoffTicket(
            conversation_pk=conv.id, reason=reason, priority=priority, summary=mask(summary), status="waiting"
        )
        ticket.created_at = now
        session.add(ticket)
    if ticket.status == "waiting":
        ticket.parked = decision.kind == "parked"
        if ticket.parked:
            ticket.created_at, ticket.timed_out_at = now, None  # the wait is counted from this request
        conv.mode = "human" if ticket.parked else "bot"
    audit(
        session, conv.conversation_id, "handoff.open", conv.conversation_id, at=now, reason=reason, kind=decision.kind
    )
    session.flush()
    return decision


@dataclass(frozen=True)
class Waiting:
    """A holder parked for a person and not yet taken: where in the queue, and how long to go."""

    reason: str
    position: int
    wait_minutes: int
    overdue: bool = False  # waited `max_wait_minutes` already: the bot takes the holder back


def waiting_of(session: Session, conv_pk: int, policy: Policy, now: datetime) -> Waiting | None:
    """The holder's place in the queue, or None when no one waits (an agent has it, or no ticket)."""
    ticket = _open_ticket_of(session, conv_pk)
    if ticket is None or ticket.status != "waiting" or not ticket.parked:
        return None
    order = _parked_waiting(session)
    position = order.index(conv_pk) + 1 if conv_pk in order else len(order) + 1
    present = agents_present(session, duty.teams_on_duty(policy.handoff, now))
    overdue = ticket.reason != SERVICE_UNAVAILABLE and duty.wait_ran_out(policy.handoff, ticket.created_at, now)
    return Waiting(ticket.reason, position, duty.expected_wait(policy.handoff, position, present), overdue)


def withdraw(session: Session, conversation_id: str, now: datetime) -> bool:
    """The holder no longer wants a person: the waiting ticket ends, the bot has the conversation."""
    conv = session.scalar(select(Conversation).where(Conversation.conversation_id == conversation_id).with_for_update())
    if conv is None:
        return False
    ticket = _open_ticket_of(session, conv.id)
    if ticket is None or ticket.status != "waiting":
        return False
    ticket.status, ticket.ended_at, conv.mode = "withdrawn", now, "bot"
    audit(session, conversation_id, "handoff.withdraw", conversation_id, at=now)
    session.flush()
    return True


def leave_callback(session: Session, conv: Conversation, at: datetime, policy: Policy, now: datetime) -> datetime:
    """The holder chose a time to be called: kept on the open ticket (one is opened if none)."""
    if not duty.callback_allowed(policy.handoff, policy.contact, now, at):
        raise ValidationFailed("the callback time is outside working hours or the contact window", field="callback_at")
    if not calls_allowed(session, conv):
        raise ValidationFailed("this number may not be called", field="callback_at")
    ticket = _open_ticket_of(session, conv.id)
    if ticket is None:
        ticket = HandoffTicket(conversation_pk=conv.id, reason="callback", priority=2, summary="", status="waiting")
        ticket.created_at, ticket.parked = now, False
        session.add(ticket)
    ticket.callback_at = at
    audit(session, conv.conversation_id, "handoff.callback", conv.conversation_id, at=now, callback_at=at.isoformat())
    session.flush()
    return at


def overdue_waits(session: Session, policy: Policy, now: datetime) -> list[str]:
    """Parked holders nobody took within `max_wait_minutes`."""
    rows = session.execute(
        select(Conversation.conversation_id, HandoffTicket.created_at)
        .join(HandoffTicket, HandoffTicket.conversation_pk == Conversation.id)
        .where(
            HandoffTicket.status == "waiting",
            HandoffTicket.parked.is_(True),
            HandoffTicket.reason != SERVICE_UNAVAILABLE,
        )
        .order_by(HandoffTicket.id)
    ).all()
    return [cid for cid, created in rows if duty.wait_ran_out(policy.handoff, created, now)]


def time_out(session: Session, conversation_id: str, policy: Policy, now: datetime) -> duty.HandoffDecision | None:
    """The wait ran out: the bot takes the holder back, the ticket stays for agents. What to offer
    (callback slots), or None if the holder is no longer waiting (taken or withdrawn meanwhile)."""
    conv = session.scalar(select(Conversation).where(Conversation.conversation_id == conversation_id).with_for_update())
    if conv is None:
        return None
    ticket = _open_ticket_of(session, conv.id)
    if ticket is None or ticket.status != "waiting" or not ticket.parked:
        return None
    if not duty.wait_ran_out(policy.handoff, ticket.created_at, now):
        return None
    ticket.parked, ticket.timed_out_at, conv.mode = False, now, "bot"
    audit(session, conversation_id, "handoff.timeout", conversation_id, at=now)
    session.flush()
    slots = duty.callback_slots(policy.handoff, policy.contact, now) if calls_allowed(session, conv) else ()
    return duty.HandoffDecision("timed_out", 0, 0, None, slots)


@dataclass(frozen=True)
class ClaimSummary:
    """What an agent reads on claim so that its first reply needs no re-asking."""

    asked: list[str]
    offered: list[str]
    refused: list[str]
    situation: list[str]
    callback_at: datetime | None


ASKED_LABELS = {
    "ask_debt_amount": "欠款金额",
    "ask_fee_detail": "利息和费用",
    "ask_consequences": "逾期后果",
    "ask_repayment_method": "还款方式",
    "ask_plan_terms": "分期条件",
    "request_installment": "分期",
    "request_deferment": "延期",
    "request_fee_waiver": "减免",
    "promise_to_pay": "承诺还款",
    "claim_paid": "已还款",
    "hardship": "困难",
    "dispute_charge": "异议",
    "complain": "投诉",
    "stop_contact": "停止联系",
    "request_human": "转人工",
}


def claim_summary(session: Session, conversation_id: str) -> ClaimSummary:
    """From the record: the holder's asks (by intent), what was offered or agreed (the audit), what
    the holder refused, and the holder's own words about their situation (masked)."""
    conv = session.scalar(select(Conversation).where(Conversation.conversation_id == conversation_id))
    if conv is None:
        raise NotFound("no such conversation", conversation_id=conversation_id)
    said = session.execute(
        select(Message.intent, Message.text)
        .where(Message.conversation_pk == conv.id, Message.sender == "user")
        .order_by(Message.seq)
    ).all()
    asked: list[str] = []
    refused: list[str] = []
    situation: list[str] = []
    for intent, text in said:
        label = ASKED_LABELS.get(intent or "")
        if label and label not in asked:
            asked.append(label)
        if intent in ("deny", "refuse_to_pay"):
            refused.append(mask(text)[:100])
        if intent == "hardship":
            situation.append(mask(text)[:200])
    offers = session.execute(
        select(AuditLog.action, AuditLog.detail)
        .where(AuditLog.actor == conversation_id, AuditLog.action.in_(("plan.offer", "plan.create")))
        .order_by(AuditLog.id)
    ).all()
    offered = [
        f"{action.removeprefix('plan.')}:{(detail or {}).get('kind') or (detail or {}).get('type')}"
        for action, detail in offers
    ]
    ticket = _open_ticket_of(session, conv.id)
    return ClaimSummary(asked, offered, refused[-3:], situation[-3:], ticket.callback_at if ticket else None)
