"""The human queue: tickets waiting for an agent, claiming, releasing back to the bot, notes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.accounts import audit
from ledger.clock import Clock
from ledger.errors import Conflict, NotFound
from ledger.masking import mask
from ledger.models import Account, AgentNote, Conversation, HandoffTicket, Message

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


def claim(session: Session, conversation_id: str, agent: str) -> HandoffTicket:
    conv, ticket = _open_ticket(session, conversation_id)
    if ticket.status == "claimed" and ticket.agent != agent:
        raise Conflict("another agent has this conversation", agent=ticket.agent)
    ticket.status, ticket.agent, conv.mode = "claimed", agent, "human"
    audit(session, agent, "handoff.claim", conversation_id)
    return ticket


def require_claimed_by(session: Session, conversation_id: str, agent: str) -> Conversation:
    conv, ticket = _open_ticket(session, conversation_id)
    if ticket.status != "claimed" or ticket.agent != agent:
        raise Conflict("claim the conversation first", conversation_id=conversation_id)
    return conv


def release(session: Session, conversation_id: str, agent: str, resolved: bool) -> Conversation:
    """Hand the conversation back to the bot; `resolved` closes it as handled by a person."""
    conv, ticket = _open_ticket(session, conversation_id)
    if ticket.status == "claimed" and ticket.agent != agent:
        raise Conflict("another agent has this conversation", agent=ticket.agent)
    ticket.status = "closed" if resolved else "released"
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
