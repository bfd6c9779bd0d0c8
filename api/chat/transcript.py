"""What a turn writes, each step one transaction run through `db.run` (a worker thread): the
holder's message stored, the bot's replies guarded and stored after it, an agent's message
checked and stored, the notice that a wait for a person ran out.

The SQL is the ledger's (`ledger.conversations`, `ledger.handoff`, `ledger.compliance`); here
those are put in the order a turn needs, with the output guard (`api/guard.py`) on everything said.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from api import guard
from api.chat.replies import Reply, TurnResult
from ledger import compliance, conduct, conversations, handoff, templates
from ledger.clock import Clock
from ledger.errors import DuplicateMessage, MessageBlocked, NoProvenPhone
from ledger.masking import mask, mask_values
from ledger.models import Conversation
from ledger.policy import Policy

log = logging.getLogger("api.chat")

Outgoing = list[tuple[str, Any]]  # (text, buttons) as the bot said them
CALLBACK_BUTTON = {"title": "预约回电", "payload": "预约回电"}  # plain text: the NLU reads it


@dataclass(frozen=True)
class Incoming:
    """A holder's message as a channel hands it over.

    `external_id`: the provider's id (unique per channel, so a retry is stored once); `phone`: the
    sender's number the channel proves (SMS); `channel_menu`: `text` is the payload of the
    channel's own signed menu, so it may reach the bot as an intent.
    """

    conversation_id: str
    text: str
    channel: str
    external_id: str | None = None
    phone: str | None = None
    channel_menu: bool = False


class Inbound(NamedTuple):
    """The holder's message as stored: its conversation and row, who had the conversation, what the
    bot may read of it, and when the store finished (`time.perf_counter()`, set by the turn)."""

    conv_pk: int
    msg_pk: int
    mode: str
    said: str
    stored_at: float = 0.0


class BotAnswer(NamedTuple):
    """What the bot made of a message (intent, confidence...), what it says, and whether it failed
    (the holding reply then)."""

    parsed: dict[str, Any]
    outgoing: Outgoing
    failed: bool


class InboundLost(OperationalError):
    """The database crashed after the holder's message was stored and before its replies were:
    the message did not reach the disk (`store_holder_message(durable=False)`). Nothing was said to the
    holder yet; like the database being away, the gateway answers 503 and the sender retries."""

    def __init__(self, conversation_id: str) -> None:
        lost = RuntimeError(f"the holder's message in {conversation_id} was lost in a database crash")
        super().__init__(None, None, lost)


# -- the holder's message


def store_inbound(
    session: Session, incoming: Incoming, clock: Clock, idle: timedelta, let_the_bot_read: Callable[[str], None]
) -> Inbound:
    """Store the holder's message with the next seq (masked), its verification lapsed first if
    `idle` has passed. `let_the_bot_read(said)` is called as soon as the bot may read the message
    before this transaction commits. Raises DuplicateMessage and WrongChannel (ledger.errors)."""
    arrival = conversations.arrive(
        session,
        incoming.conversation_id,
        incoming.text,
        incoming.channel,
        external_id=incoming.external_id,
        phone=incoming.phone,
        channel_menu=incoming.channel_menu,
    )
    conv = arrival.conv
    state = conversations.TurnState(conv.channel, conv.mode, conv.verified_at, conv.last_holder_at)
    # Storing the message from here on changes nothing the bot's actions read (the conversation
    # row and its phone are committed, no verification lapses): the bot reads it while this
    # transaction finishes. Not for a provider's message, whose id must be known unique first.
    if (
        arrival.known
        and not arrival.claimed
        and not incoming.external_id
        and conversations.bot_may_read_first(state, incoming.channel, clock.now(), idle)
    ):
        let_the_bot_read(arrival.said)
    try:
        msg_pk = conversations.store_holder_message(
            session,
            conv,
            arrival.said,
            clock,
            idle,
            channel=incoming.channel,
            external_id=incoming.external_id,
            durable=conv.mode == "human",  # else the replies' commit follows before the holder hears back
        )
    except IntegrityError:  # the same provider message raced in from a retry
        raise DuplicateMessage("this message was processed already", external_id=incoming.external_id) from None
    return Inbound(conv.id, msg_pk, conv.mode, arrival.said)


# -- the replies


def store_bot_replies(session: Session, conv: Conversation, outgoing: Outgoing, channel: str) -> list[Reply]:
    """Guard each reply (replacing what may not be said), store it, and return it as sent."""
    session.flush()  # what this session changed in `conv` (its mode, its verification) is in the row
    return _store_guarded(session, conversations.reserve_replies(session, conv.id, len(outgoing)), outgoing, channel)


def _store_guarded(session: Session, slots: conversations.ReplySlots, outgoing: Outgoing, channel: str) -> list[Reply]:
    """Guard each reply for the conversation as `slots` found it, store them in its seqs."""
    names = [] if slots.verified else conduct.holder_names(session, slots.claimed_phone, slots.account_pk)
    guarded = []
    for reply_text, buttons in outgoing:
        verdict = guard.check(reply_text, slots.verified, names=names)
        if verdict.blocked:
            log.warning(
                "guard replaced a reply", extra={"conversation_id": slots.conversation_id, "reason": verdict.blocked}
            )
        kept = [{"title": b["title"], "payload": b["payload"]} for b in buttons or []] or None
        guarded.append((verdict.text, kept))
    return [Reply(*stored) for stored in conversations.store_replies(session, slots, "bot", channel, guarded)]


def _nlu_note(inbound: Inbound, answer: BotAnswer) -> tuple[int, dict[str, Any]] | None:
    """What the NLU understood of the holder's message, to note on its row; None if nothing."""
    parsed = answer.parsed
    if not parsed.get("intent"):
        return None
    values: dict[str, Any] = {"intent": parsed.get("intent"), "confidence": parsed.get("confidence")}
    answers = [str(v) for v in parsed.get("secret_values") or []]
    if answers:  # bare verification answers ("2345 6002") the NLU recognised: masked too
        values["text"] = mask_values(mask(inbound.said), answers)
    return inbound.msg_pk, values


def store_answer(session: Session, inbound: Inbound, answer: BotAnswer, channel: str) -> TurnResult:
    """The bot's replies guarded and stored after the holder's message, with what the NLU made of
    the message; when the bot failed, a person is asked for as well."""
    if answer.failed:
        conv = session.get(Conversation, inbound.conv_pk)
        assert conv is not None
        conversations.open_ticket(session, conv, handoff.SERVICE_UNAVAILABLE, 1, mask(inbound.said)[:200])
    # One statement reserves the replies' seqs and reads what the guard needs (on PostgreSQL it
    # also notes what the NLU understood of the holder's message).
    slots = conversations.reserve_replies(
        session, inbound.conv_pk, len(answer.outgoing), note=_nlu_note(inbound, answer)
    )
    return TurnResult(slots.mode, _store_guarded(session, slots, answer.outgoing, channel))


def already_answered(session: Session, conversation_id: str, inbound: Inbound) -> TurnResult | None:
    """The replies an earlier try stored after the holder's message, if it committed before its
    connection was cut; raises InboundLost when the message itself is gone (a database crash)."""
    seq = conversations.message_seq(session, inbound.msg_pk)
    if seq is None:
        raise InboundLost(conversation_id)
    done = [Reply(m.seq, m.text, m.buttons) for m in conversations.bot_replies_after(session, inbound.conv_pk, seq)]
    if not done:
        return None
    return TurnResult(conversations.mode_of(session, inbound.conv_pk) or "bot", done)


def store_seed(
    session: Session, conversation_id: str, channel: str, intent: str, outgoing: Outgoing, failed: bool
) -> TurnResult:
    """An outbound contact's opening, as the bot said it (`failed`: the holding reply instead; like a
    failed turn, a person is asked for until the bot is back, and said once)."""
    conv = conversations.get_or_create(session, conversation_id, channel)
    if failed:
        if conv.mode == "human":
            return TurnResult("human", [])
        conversations.open_ticket(session, conv, handoff.SERVICE_UNAVAILABLE, 1, intent)
    return TurnResult(conv.mode, store_bot_replies(session, conv, outgoing, channel))


# -- an agent's message


def store_agent_message(
    session: Session, conversation_id: str, agent: str, text: str, now: datetime, contact_rules: Any
) -> tuple[Reply, str, str | None]:
    """An agent's message to the holder, checked and stored; with the channel and phone to send it on."""
    conv = handoff.require_claimed_by(session, conversation_id, agent)
    _check_agent_message(session, conv, text, now, contact_rules)
    msg = conversations.append_message(session, conv, "agent", text)
    return Reply(msg.seq, msg.text, None, "agent"), conv.channel, conv.claimed_phone


def _check_agent_message(session: Session, conv: Conversation, text: str, now: datetime, contact_rules: Any) -> None:
    """Whether an agent's message may go to the holder; raises why not (nothing stored or sent):
    WeChat's 48-hour window closed, the guard refusing it, or an SMS without a proven number or
    against the contact rules. An SMS that may go is recorded as a contact."""
    if conv.channel == "wechat":  # outside WeChat's 48-hour window nothing may be sent
        from ledger.wechat import require_service_window

        require_service_window(session, conv.conversation_id, now)
    verified = conv.verified_at is not None
    names = conduct.holder_names(session, conv.claimed_phone, conv.account_pk) if not verified else []
    verdict = guard.check(text, verified, names=names)
    if verdict.blocked:  # the agent reads why and writes it again
        log.warning(
            "guard refused an agent message", extra={"conversation_id": conv.conversation_id, "reason": verdict.blocked}
        )
        raise MessageBlocked(verdict.why or verdict.blocked, reason=verdict.blocked)
    if conv.channel != "sms":
        return
    if not (conv.claimed_phone and conv.phone_proven):
        # An SMS goes only to the number the conversation came from, never to one typed in it.
        raise NoProvenPhone("这个对话没有来自其渠道的号码，不能发送短信")
    _record_agent_sms(session, conv, conv.claimed_phone, now, contact_rules)


def _record_agent_sms(session: Session, conv: Conversation, phone: str, now: datetime, contact_rules: Any) -> None:
    """An SMS from an agent is an outbound contact: a reply window spares it the caps, never the
    quiet hours or the holder's own time windows (ledger/compliance.py)."""
    decision = compliance.decide_contact(
        session,
        phone=phone,
        account_pk=conv.account_pk,
        channel="sms",
        purpose="agent",
        at=now,
        rules=contact_rules,
        last_inbound_at=conduct.last_message_from_person(session, conv.id),
    )
    if decision.outcome != "send":
        raise compliance.ContactNotAllowed.because(decision)
    compliance.record_contact(
        session, phone=phone, account_pk=conv.account_pk, channel="sms", purpose="agent", decision=decision, at=now
    )


# -- a wait for a person that ran out


def timeout_text(policy: Policy) -> str:
    return templates.render("chat", "handoff_timeout.j2", max_wait=policy.handoff.max_wait_minutes)


def end_wait(
    session: Session, conversation_id: str, policy: Policy, now: datetime
) -> tuple[Reply, str, str | None] | None:
    """The holder waited `max_wait_minutes` for nobody: the bot takes them back (the ticket stays
    for agents) and says so, offering a callback. The notice as stored, its channel and phone; None
    when the holder no longer waits (taken or withdrawn meanwhile)."""
    if handoff.time_out(session, conversation_id, policy, now) is None:
        return None
    conv = conversations.find(session, conversation_id)
    assert conv is not None
    msg = conversations.append_message(session, conv, "bot", timeout_text(policy), buttons=[CALLBACK_BUTTON])
    return Reply(msg.seq, msg.text, msg.buttons), conv.channel, conv.claimed_phone
