"""Conversations: the record of every message, and identity verification.

Verification state lives in the database so the gateway's output guard, the action
server and the agent console all see the same thing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Literal, cast

from sqlalchemy import Insert, Select, Table, Update, bindparam, func, insert, literal, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ledger.accounts import audit
from ledger.clock import Clock
from ledger.errors import DuplicateMessage, WrongChannel
from ledger.masking import mask
from ledger.models import Account, AuditLog, Cardholder, Conversation, HandoffTicket, Message, stamp

MAX_VERIFY_FAILURES = 3  # per conversation
MAX_PHONE_FAILURES_PER_DAY = 5  # per phone, across conversations (proven and typed counted apart)
VerifyResult = Literal["verified", "retry", "locked", "need_more", "third_party"]
THIRD_PARTY = "third_party"
Buttons = list[dict[str, str]]
_CONVERSATIONS = cast(Table, Conversation.__table__)  # for Core statements on the turn's hot path
_MESSAGES = cast(Table, Message.__table__)
# The turn's statements are built once: SQLAlchemy then neither rebuilds them nor works out their
# cache key on every message (a tenth of the gateway's work per turn). Values go in as bind
# parameters, named with a trailing "_" so they never clash with the columns they set.
_FIND: Select[Conversation] = select(Conversation).where(Conversation.conversation_id == bindparam("cid_"))
_INSERT_MESSAGE: Insert = insert(_MESSAGES).returning(_MESSAGES.c.id)
_INSERT_MESSAGES: Insert = insert(_MESSAGES)


def _param(column: str, prefix: str = "") -> str:
    """The bind parameter that carries `column`'s value in the statements below."""
    return f"{prefix}{column}_"


def _params(values: dict[str, object], prefix: str = "") -> dict[str, object]:
    return {_param(column, prefix): value for column, value in values.items()}


@cache
def _reserve_statement(columns: tuple[str, ...]) -> Update:
    """Reserve `n_` seqs of conversation `pk_` and set `columns` (each from the parameter `<column>_`)."""
    c = _CONVERSATIONS.c
    return (
        update(_CONVERSATIONS)
        .where(c.id == bindparam("pk_"))
        .values(last_seq=c.last_seq + bindparam("n_"), **{name: bindparam(_param(name)) for name in columns})
        .returning(c.last_seq)
    )


@cache
def _reserve_replies_statement(noted: tuple[str, ...] | None) -> Update:
    """Reserve `n_` seqs for replies and read what the guard needs; on PostgreSQL, with `noted`
    column names, also note the NLU's reading on message `note_pk_` (a data-modifying WITH)."""
    c = _CONVERSATIONS.c
    # updated_at given, not left to its onupdate: SQLAlchemy does not fill that in once a WITH is added
    reserve = (
        update(_CONVERSATIONS)
        .where(c.id == bindparam("pk_"))
        .values(last_seq=c.last_seq + bindparam("n_"), updated_at=bindparam("updated_at_"))
        .returning(c.last_seq, c.conversation_id, c.mode, c.verified_at, c.claimed_phone, c.account_pk)
    )
    return reserve if noted is None else reserve.add_cte(_note_statement(noted).cte("noted"))


@cache
def _note_statement(columns: tuple[str, ...]) -> Update:
    """Write `columns` (each from `note_<column>_`) on message `note_pk_`."""
    return (
        update(_MESSAGES)
        .where(_MESSAGES.c.id == bindparam("note_pk_"))
        .values(**{name: bindparam(_param(name, "note_")) for name in columns})
    )


@dataclass(frozen=True)
class VerifyOutcome:
    result: VerifyResult
    failures: int
    account_id: str | None = None


def get_or_create(session: Session, conversation_id: str, channel: str) -> Conversation:
    return find(session, conversation_id) or create(session, conversation_id, channel)


def create(session: Session, conversation_id: str, channel: str) -> Conversation:
    """A new conversation, the bot's, with no messages (flushed: its id is known)."""
    conv = Conversation(
        conversation_id=conversation_id, channel=channel, mode="bot", failed_verifications=0, last_seq=0
    )
    session.add(conv)
    session.flush()
    return conv


def find(session: Session, conversation_id: str) -> Conversation | None:
    return session.scalar(_FIND, {"cid_": conversation_id})


def append_message(
    session: Session,
    conv: Conversation,
    sender: str,
    text: str,
    *,
    channel: str | None = None,
    buttons: list[dict[str, str]] | None = None,
    intent: str | None = None,
    confidence: float | None = None,
    external_id: str | None = None,
) -> Message:
    """Store one message (masked) with the next sequence number of its conversation."""
    message = Message(
        sender=sender,
        channel=channel or conv.channel,
        text=text,
        buttons=buttons,
        intent=intent,
        confidence=confidence,
        external_id=external_id,
    )
    [stored] = append_messages(session, conv, [message])
    return stored


def append_messages(session: Session, conv: Conversation, messages: list[Message]) -> list[Message]:
    """Store messages (masked) in order, with the next sequence numbers of their conversation.

    One atomic increment reserves all their numbers, so each message gets a unique, ordered
    seq even with concurrent writers, and a turn's replies cost one statement, not one each.
    """
    if not messages:
        return []
    last = session.execute(
        update(Conversation)
        .where(Conversation.id == conv.id)
        .values(last_seq=Conversation.last_seq + len(messages))
        .returning(Conversation.last_seq)
    ).scalar_one()
    conv.last_seq = last
    for seq, message in enumerate(messages, start=last - len(messages) + 1):
        message.conversation_pk, message.seq, message.text = conv.id, seq, mask(message.text)
        message.channel = message.channel or conv.channel
    session.add_all(messages)
    session.flush()
    return messages


def is_duplicate(session: Session, channel: str, external_id: str) -> bool:
    """Whether a provider's message with this id on this channel is stored already."""
    found = select(Message.id).where(Message.channel == channel, Message.external_id == external_id)
    return session.scalar(found) is not None


@dataclass(frozen=True)
class Arrival:
    """A holder's message as it arrives, before it is stored."""

    conv: Conversation
    said: str  # what the bot may read: a "/payload" nobody offered here is typed text, its "/" dropped
    known: bool  # the conversation existed before this message
    claimed: bool  # this message proved the conversation's phone (the provider's From)


def arrive(
    session: Session,
    conversation_id: str,
    text: str,
    channel: str,
    *,
    external_id: str | None = None,
    phone: str | None = None,
    channel_menu: bool = False,
) -> Arrival:
    """A holder's message arrives on `channel`: its conversation found (or started), its phone
    claimed when the channel proves it, and what the bot may read of it.

    Raises DuplicateMessage for a provider's message seen before (same `external_id`), and
    WrongChannel when the conversation is another channel's. `channel_menu`: `text` is the payload
    of the channel's own signed menu, so it may reach the bot as an intent.
    """
    if external_id and is_duplicate(session, channel, external_id):
        raise DuplicateMessage("this message was processed already", external_id=external_id)
    conv = find(session, conversation_id)
    known = conv is not None
    if conv is None:
        conv = create(session, conversation_id, channel)
    if conv.channel != channel:  # never let one channel speak, or listen, for another
        raise WrongChannel("no such conversation on this channel", conversation_id=conversation_id)
    claimed = bool(phone) and conv.claimed_phone is None
    if claimed:
        claim_phone(session, conv, phone or "", proven=True)
    said = text
    if said.startswith("/") and not (channel_menu or said in offered_payloads(session, conv)):
        said = said.lstrip("/")  # a payload nobody offered here is typed text, never an intent
    return Arrival(conv, said, known, claimed)


def message_seq(session: Session, message_pk: int) -> int | None:
    """The seq of a stored message; None when it is not (a database crash lost it)."""
    return session.scalar(select(Message.seq).where(Message.id == message_pk))


def mode_of(session: Session, conversation_pk: int) -> str | None:
    """Who has the conversation now: the bot or a person."""
    return session.scalar(select(Conversation.mode).where(Conversation.id == conversation_pk))


def bot_replies_after(session: Session, conversation_pk: int, seq: int) -> list[Message]:
    """The bot's messages stored after seq `seq`, in order."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_pk == conversation_pk, Message.seq > seq, Message.sender == "bot")
            .order_by(Message.seq)
        )
    )


def lapses(verified_at: datetime | None, last_holder_at: datetime | None, now: datetime, idle: timedelta) -> bool:
    """Whether a message at `now` finds the verification lapsed: `idle` or longer since the
    holder's last word, or since they verified if that was later."""
    if verified_at is None:
        return False
    return now - max(t for t in (last_holder_at, verified_at) if t is not None) >= idle


@dataclass(frozen=True)
class TurnState:
    """What decides whether the bot may read a holder's message before it is stored."""

    channel: str
    mode: str
    verified_at: datetime | None
    last_holder_at: datetime | None


def bot_may_read_first(state: TurnState | None, channel: str, now: datetime, idle: timedelta) -> bool:
    """Whether the bot may be asked about a message before its store commits (the two then run
    side by side), because storing it changes nothing the bot's actions read: the conversation
    is on this channel, the bot has it, and its verification does not lapse with this message
    (a lapse must be written before any action reads it)."""
    return (
        state is not None
        and state.channel == channel
        and state.mode == "bot"
        and not lapses(state.verified_at, state.last_holder_at, now, idle)
    )


def store_holder_message(
    session: Session,
    conv: Conversation,
    text: str,
    clock: Clock,
    idle: timedelta,
    *,
    channel: str | None = None,
    external_id: str | None = None,
    durable: bool = True,
) -> int:
    """The holder wrote `text`: stored (masked) with the next seq; the message's id.

    A verification older than `idle` without a word from them lapses first (the holder must
    verify again before any detail). The conversation row takes one update for all of it (the
    seq, when they last wrote, a lapse) and the message one insert: this runs on every turn. On
    PostgreSQL both ride in one statement (a data-modifying WITH): one round trip.

    `durable=False`: this transaction's COMMIT returns without waiting for its log to reach the
    disk (PostgreSQL's `synchronous_commit = off`, for this transaction alone; SQLite: no
    change). Only when a normal commit is sure to follow before anyone is told the message is
    stored, as the turn's replies do. PostgreSQL writes its log in order, so that later commit
    puts this one on disk too, and whoever reads the message before then (another process,
    another transaction) commits after it and does the same. A server crash between the two can
    lose the message; the caller has then told nobody it was stored. What it saves is one wait
    for the disk (`fdatasync`).
    """
    now = clock.now()
    changes: dict[str, object] = {"last_holder_at": now}
    if lapses(conv.verified_at, conv.last_holder_at, now, idle):
        changes["verified_at"] = None
        audit(session, conv.conversation_id, "verify.lapsed", conv.conversation_id)
    message: dict[str, object] = {"channel": channel or conv.channel, "text": mask(text), "external_id": external_id}
    if session.get_bind().dialect.name != "postgresql":
        seq = _reserve(session, conv, 1, changes)
        row = {"conversation_pk": conv.id, "seq": seq, "sender": "user", "buttons": None, **message}
        return int(session.execute(_INSERT_MESSAGE, row).scalar_one())  # buttons None: as the ORM stores none
    written = stamp()  # created_at and updated_at, as their defaults would be: a WITH leaves them unfilled
    changes["updated_at"] = written
    params = {"pk_": conv.id, "n_": 1, "created_at_": written, **_params(changes), **_params(message)}
    msg_pk, seq = session.execute(_store_holder_statement(tuple(changes), durable), params).one()
    for key, value in (("last_seq", seq), *changes.items()):
        set_committed_value(conv, key, value)
    return int(msg_pk)


@cache
def _store_holder_statement(columns: tuple[str, ...], durable: bool) -> Insert:
    """PostgreSQL: reserve one seq of conversation `pk_` (setting `columns`) and insert the holder's
    message in it, in one statement; its id and seq. Not `durable`: the commit does not wait for
    the disk (see `store_holder_message`)."""
    reserved = _reserve_statement(columns).cte("reserved")
    m = _MESSAGES.c
    row = select(
        bindparam("pk_", type_=m.conversation_pk.type),
        reserved.c.last_seq,
        literal("user", m.sender.type),
        bindparam("channel_", type_=m.channel.type),
        bindparam("text_", type_=m.text.type),
        bindparam("buttons_", None, type_=m.buttons.type),  # JSON null, as the ORM stores no buttons
        bindparam("external_id_", type_=m.external_id.type),
        bindparam("created_at_", type_=m.created_at.type),
    )
    if durable:
        row = row.select_from(reserved)
    else:  # the setting is read in as a one-row table, so PostgreSQL runs set_config once
        relaxed = select(func.set_config("synchronous_commit", "off", True).label("off")).cte("relaxed")
        row = row.select_from(reserved.join(relaxed, true()))
    columns_in = ["conversation_pk", "seq", "sender", "channel", "text", "buttons", "external_id", "created_at"]
    return insert(_MESSAGES).from_select(columns_in, row).returning(m.id, m.seq)


def _reserve(session: Session, conv: Conversation, n: int, changes: dict[str, object]) -> int:
    """Reserve `n` seqs (one atomic increment) and write `changes` to the row; the last seq reserved.

    A Core statement: `conv` is brought up to date as if it had been loaded after it, so the
    session has nothing left to write for these columns.
    """
    params = {"pk_": conv.id, "n_": n, **_params(changes)}
    last = session.execute(_reserve_statement(tuple(changes)), params).scalar_one()
    for key, value in (("last_seq", last), *changes.items()):
        set_committed_value(conv, key, value)
    return int(last)


@dataclass(frozen=True)
class ReplySlots:
    """A conversation as seqs were reserved for replies: what guarding and storing them needs."""

    conversation_pk: int
    conversation_id: str
    first_seq: int
    mode: str
    verified: bool
    claimed_phone: str | None
    account_pk: int | None


def reserve_replies(
    session: Session, conversation_pk: int, n: int, *, note: tuple[int, dict[str, object]] | None = None
) -> ReplySlots:
    """Reserve `n` seqs for replies in one statement that also reads what the guard needs.

    `note`: (message id, values) to write on the holder's message as well (what the NLU made of
    it). On PostgreSQL it rides in the same statement, a data-modifying WITH: one round trip less.
    """
    params: dict[str, object] = {"pk_": conversation_pk, "n_": n, "updated_at_": stamp()}
    noted: tuple[str, ...] | None = None
    if note is not None:
        note_params = {"note_pk_": note[0], **_params(note[1], "note_")}
        if session.get_bind().dialect.name == "postgresql":
            noted, params = tuple(note[1]), params | note_params
        else:
            session.execute(_note_statement(tuple(note[1])), note_params)
    row = session.execute(_reserve_replies_statement(noted), params).one()
    return ReplySlots(
        conversation_pk,
        row.conversation_id,
        row.last_seq - n + 1,
        row.mode,
        row.verified_at is not None,
        row.claimed_phone,
        row.account_pk,
    )


def store_replies(
    session: Session, slots: ReplySlots, sender: str, channel: str, replies: list[tuple[str, Buttons | None]]
) -> list[tuple[int, str, Buttons | None]]:
    """Store replies (masked) in the seqs `slots` reserved, in one insert; (seq, text, buttons) as stored."""
    stored = [(seq, mask(text), buttons) for seq, (text, buttons) in enumerate(replies, start=slots.first_seq)]
    if stored:
        rows = [
            {
                "conversation_pk": slots.conversation_pk,
                "seq": seq,
                "sender": sender,
                "channel": channel,
                "text": text,
                "buttons": buttons,
            }
            for seq, text, buttons in stored
        ]
        session.execute(_INSERT_MESSAGES, rows)
    return stored


def offered_payloads(session: Session, conv: Conversation) -> set[str]:
    """Every button payload the bot or an agent sent in this conversation."""
    rows = session.scalars(
        select(Message.buttons).where(Message.conversation_pk == conv.id, Message.buttons.is_not(None))
    )
    return {str(b.get("payload", "")) for buttons in rows for b in (buttons or [])}


def messages_after(session: Session, conv: Conversation, after: int, senders: tuple[str, ...]) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_pk == conv.id, Message.seq > after, Message.sender.in_(senders))
            .order_by(Message.seq)
        )
    )


def claim_phone(session: Session, conv: Conversation, phone: str, *, proven: bool = False) -> bool:
    """Record the phone of the person talking; whether it is registered is never revealed.

    `proven`: the channel itself shows it (the SMS sender's number, the number our link went to,
    a WeChat follower's bound phone). A proven phone is never replaced by a typed one: False then,
    and nothing changes (the typed number is someone else's, see `typed_other_phone`).
    """
    if conv.phone_proven and conv.claimed_phone is not None:
        if phone == conv.claimed_phone:
            return True
        if not proven:
            audit(session, conv.conversation_id, "verify.other_phone_typed", conv.conversation_id, phone=mask(phone))
            return False
    conv.claimed_phone = phone
    conv.phone_proven = proven
    audit(session, conv.conversation_id, "verify.phone_given", conv.conversation_id, phone=mask(phone), proven=proven)
    return True


def typed_other_phone(conv: Conversation, phone: str) -> bool:
    """A number typed in a conversation whose phone is proven, and not that phone: the person is
    asking about someone else's account. Nothing about either is changed or said."""
    return conv.phone_proven and conv.claimed_phone is not None and phone != conv.claimed_phone


def third_party_speaking(conv: Conversation | None) -> bool:
    """Someone said they are not the holder (family, a friend, a colleague, "帮他问问")."""
    return conv is not None and conv.speaker == THIRD_PARTY


def mark_third_party(session: Session, conv: Conversation, reason: str) -> None:
    """From now on this conversation is someone other than the holder: it cannot verify, whatever
    digits follow, and a verification it had ends at once."""
    end_verification(session, conv, reason)
    if conv.speaker != THIRD_PARTY:
        conv.speaker = THIRD_PARTY
        audit(session, conv.conversation_id, "speaker.third_party", conv.conversation_id, reason=reason)
        session.flush()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.upper().encode(), b.upper().encode())


def verify(
    session: Session, conv: Conversation, id_last4: str | None, card_last4: str | None, clock: Clock
) -> VerifyOutcome:
    """Check phone + ID last four + card last four together; three failures lock the conversation.

    Someone who said they are not the holder never verifies here. Failures per phone are counted
    apart for conversations that proved they have the phone (its SMS, its link, its WeChat) and
    for those where it was only typed: guessing on the web never locks the holder's own SMS or link.
    """
    if third_party_speaking(conv):
        return VerifyOutcome("third_party", conv.failed_verifications)
    if conv.verified_at is not None and conv.account_pk is not None:
        account_id = session.scalar(select(Account.account_id).where(Account.id == conv.account_pk))
        return VerifyOutcome("verified", conv.failed_verifications, account_id)
    if conv.failed_verifications >= MAX_VERIFY_FAILURES:
        return VerifyOutcome("locked", conv.failed_verifications)
    if not (conv.claimed_phone and id_last4 and card_last4):
        return VerifyOutcome("need_more", conv.failed_verifications)
    phone_key = failure_key(conv.claimed_phone, conv.phone_proven)
    if _recent_phone_failures(session, phone_key, clock) >= MAX_PHONE_FAILURES_PER_DAY:
        # Guessing across fresh conversations stops here too; a person takes over.
        return VerifyOutcome("locked", conv.failed_verifications)
    rows = session.execute(
        select(Account, Cardholder)
        .join(Cardholder, Account.cardholder_id == Cardholder.id)
        .where(Cardholder.phone == conv.claimed_phone)
    ).all()
    for account, holder in rows:
        if _same(holder.id_last4, id_last4) and _same(account.card_last4, card_last4):
            conv.account_pk, conv.verified_at = account.id, clock.now()
            audit(session, conv.conversation_id, "verify.passed", account.account_id)
            return VerifyOutcome("verified", conv.failed_verifications, account.account_id)
    conv.failed_verifications += 1
    audit(session, conv.conversation_id, "verify.failed", phone_key, at=clock.now(), failures=conv.failed_verifications)
    if conv.failed_verifications >= MAX_VERIFY_FAILURES:
        return VerifyOutcome("locked", conv.failed_verifications)
    return VerifyOutcome("retry", conv.failed_verifications)


def _phone_key(phone: str) -> str:
    """Failures are counted per phone without writing the number itself into the audit log."""
    return "phone:" + hashlib.sha256(phone.encode()).hexdigest()[:24]


def failure_key(phone: str, proven: bool) -> str:
    """The audit subject failures of `phone` are counted under: typed and proven apart."""
    return ("proven-" if proven else "") + _phone_key(phone)


def _recent_phone_failures(session: Session, phone_key: str, clock: Clock) -> int:
    since = clock.now() - timedelta(days=1)
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "verify.failed", AuditLog.subject == phone_key, AuditLog.at >= since)
        )
        or 0
    )


def lock_ticket_due(session: Session, conv: Conversation, clock: Clock) -> bool:
    """Whether a verification lock here opens a ticket for a person: at most one per phone per
    day (a stranger's guesses must not fill the human queue), noted when it is due."""
    if conv.claimed_phone is None:
        return True
    key = _phone_key(conv.claimed_phone)
    since = clock.now() - timedelta(days=1)
    opened = session.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.action == "verify.lock_ticket", AuditLog.subject == key, AuditLog.at >= since)
    )
    if opened:
        return False
    audit(session, conv.conversation_id, "verify.lock_ticket", key, at=clock.now())
    return True


def verified_account_id(session: Session, conversation_id: str) -> str | None:
    """The account this conversation proved to be the holder of, or None."""
    row = session.execute(
        select(Account.account_id)
        .join(Conversation, Conversation.account_pk == Account.id)
        .where(Conversation.conversation_id == conversation_id, Conversation.verified_at.is_not(None))
    ).first()
    return row[0] if row else None


def end_verification(session: Session, conv: Conversation, reason: str) -> None:
    """Someone other than the holder is talking (我是他老婆, 他不在，我替他): the conversation is no
    longer verified, at once, so nothing more about the account is said or shown in it."""
    if conv.verified_at is None and conv.account_pk is None:
        return
    conv.verified_at, conv.account_pk = None, None
    audit(session, conv.conversation_id, "verify.ended", conv.conversation_id, reason=reason)
    session.flush()


def open_ticket(session: Session, conv: Conversation, reason: str, priority: int, summary: str) -> HandoffTicket:
    """Hand the conversation to a person: one waiting ticket at a time, and the gateway stops calling the bot."""
    ticket = session.scalar(
        select(HandoffTicket).where(
            HandoffTicket.conversation_pk == conv.id, HandoffTicket.status.in_(("waiting", "claimed"))
        )
    )
    if ticket is None:
        ticket = HandoffTicket(
            conversation_pk=conv.id, reason=reason, priority=priority, summary=mask(summary), status="waiting"
        )
        session.add(ticket)
    conv.mode = "human"
    audit(session, conv.conversation_id, "handoff.open", conv.conversation_id, reason=reason)
    session.flush()
    return ticket
