"""WeChat followers: pushes seen once, the conversation an openid is in, bindings to holders, windows.

An openid is bound to a holder only once the holder verified in that conversation. Disclosure
lasts while the conversation does: after VERIFY_IDLE_MINUTES without a message, or on 解绑, the
next message starts a conversation that must verify again. The binding itself (who this follower
is, for reminders that carry no detail) lasts until 解绑 or unsubscribing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger import compliance, conversations
from ledger.accounts import audit
from ledger.errors import Conflict
from ledger.models import (
    Account,
    Cardholder,
    Conversation,
    Message,
    WeChatBinding,
    WeChatNonce,
    WeChatPush,
    WeChatUser,
)
from ledger.policy import ContactPolicy

CHANNEL = "wechat"
# WeChat lets an account answer with customer-service messages only within 48 hours of the
# follower's last message or click; after that only template messages may be sent.
SERVICE_WINDOW = timedelta(hours=48)


class OutsideServiceWindow(Conflict):
    code = "outside_service_window"


@dataclass(frozen=True)
class Current:
    conversation_id: str
    mode: str
    started: bool  # a new conversation was started for this message
    lapsed: bool  # the previous one's verification lapsed (idle) before this message


PUSH_FRESHNESS = timedelta(minutes=5)  # a signed push older (or newer) than this is refused


class StalePush(Conflict):
    """The push's signed timestamp is outside the freshness window: a captured push replayed later."""

    code = "stale_push"


class ReplayedPush(Conflict):
    """This signature (timestamp, nonce) already carried another push within the window."""

    code = "replayed_push"


def push_is_fresh(timestamp: str, now: datetime, window: timedelta = PUSH_FRESHNESS) -> bool:
    """Whether WeChat's signed `timestamp` (seconds) is within `window` of `now`, either side."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now.timestamp() - int(timestamp)) <= window.total_seconds()


def record_signed_push(
    session: Session,
    signed: tuple[str, str, str],
    push: tuple[str, str, str],
    payload: dict[str, object] | None,
    now: datetime,
    window: timedelta = PUSH_FRESHNESS,
) -> bool:
    """Store a push whose signature (timestamp, nonce, signature) was checked, refusing replays.

    StalePush when the timestamp is outside the window. The signature is remembered for the window
    (in the database, so every gateway worker sees it): seen again with the same push (WeChat's own
    retry) it is answered as a duplicate, with another push (a captured signature on a new body or
    MsgId) ReplayedPush. Then as `record_push`: False when the push was already stored."""
    timestamp, nonce, sig = signed
    dedupe_key, openid, kind = push
    if not push_is_fresh(timestamp, now, window):
        raise StalePush("the push is too old or too new to be WeChat's", timestamp=timestamp)
    key = hashlib.sha256(f"{timestamp}\n{nonce}\n{sig}".encode()).hexdigest()
    session.execute(delete(WeChatNonce).where(WeChatNonce.seen_at < now - 2 * window))  # past any window
    seen = session.scalar(select(WeChatNonce.dedupe_key).where(WeChatNonce.key == key))
    if seen is None:
        try:
            with session.begin_nested():
                session.add(WeChatNonce(key=key, dedupe_key=dedupe_key, seen_at=now))
        except IntegrityError:  # the same signature raced in on another connection
            seen = session.scalar(select(WeChatNonce.dedupe_key).where(WeChatNonce.key == key))
    if seen is not None and seen != dedupe_key:
        raise ReplayedPush("this signature was already used", timestamp=timestamp)
    return record_push(session, dedupe_key, openid, kind, payload)


def record_push(
    session: Session, dedupe_key: str, openid: str, kind: str, payload: dict[str, object] | None = None
) -> bool:
    """Store a push (its key, and itself until processed); False when WeChat already delivered it."""
    if session.scalar(select(WeChatPush.id).where(WeChatPush.dedupe_key == dedupe_key)):
        return False
    try:
        with session.begin_nested():
            session.add(WeChatPush(dedupe_key=dedupe_key, openid=openid, kind=kind[:32], payload=payload))
    except IntegrityError:  # the same push raced in on another connection
        return False
    return True


def push_done(session: Session, dedupe_key: str, now: datetime) -> None:
    push = session.scalar(select(WeChatPush).where(WeChatPush.dedupe_key == dedupe_key))
    if push is not None:
        push.done_at, push.payload = now, None


def pending_pushes(session: Session, older_than: datetime, limit: int = 500) -> list[dict[str, object]]:
    """Pushes stored but never processed (their gateway stopped after answering), oldest first."""
    rows = session.scalars(
        select(WeChatPush.payload)
        .where(WeChatPush.done_at.is_(None), WeChatPush.payload.is_not(None), WeChatPush.received_at < older_than)
        .order_by(WeChatPush.id)
        .limit(limit)
    )
    return [dict(p) for p in rows if p]


def user(session: Session, openid: str) -> WeChatUser:
    found = session.scalar(select(WeChatUser).where(WeChatUser.openid == openid))
    if found is None:
        found = WeChatUser(openid=openid, subscribed=True)
        session.add(found)
        session.flush()
    return found


def active_binding(session: Session, openid: str) -> WeChatBinding | None:
    return session.scalar(select(WeChatBinding).where(WeChatBinding.openid == openid, WeChatBinding.ended_at.is_(None)))


def _start(session: Session, follower: WeChatUser) -> Conversation:
    conv = conversations.get_or_create(session, f"wx-{secrets.token_hex(10)}", CHANNEL)
    binding = active_binding(session, follower.openid)
    if binding is not None:  # like an SMS sender's number: tied to the holder, still verified first
        phone = session.scalar(select(Cardholder.phone).where(Cardholder.id == binding.cardholder_id))
        if phone:
            conversations.claim_phone(session, conv, phone, proven=True)
    follower.conversation_id = conv.conversation_id
    return conv


def _lapse(conv: Conversation) -> None:
    conv.verified_at, conv.account_pk = None, None


def conversation_for(session: Session, openid: str, now: datetime, idle: timedelta) -> Current:
    """The conversation this follower's message belongs to, after the idle rule; marks the interaction.

    A conversation a person has (mode human) is kept, its verification lapsed; any other idle
    one is left behind and a new one started.
    """
    follower = user(session, openid)
    conv = conversations.find(session, follower.conversation_id) if follower.conversation_id else None
    last = follower.last_interaction_at
    idle_passed = last is not None and now - last >= idle
    follower.last_interaction_at = now
    follower.subscribed, follower.unsubscribed_at = True, None
    if conv is None:
        conv = _start(session, follower)
        return Current(conv.conversation_id, conv.mode, True, False)
    if not idle_passed:
        return Current(conv.conversation_id, conv.mode, False, False)
    was_verified = conv.verified_at is not None
    if conv.mode == "human":
        _lapse(conv)
        return Current(conv.conversation_id, conv.mode, False, was_verified)
    conv = _start(session, follower)
    return Current(conv.conversation_id, conv.mode, True, was_verified)


def bind_if_verified(session: Session, openid: str, conversation_id: str, now: datetime) -> bool:
    """After a turn: bind the follower to the holder that conversation verified; True when newly bound."""
    conv = conversations.find(session, conversation_id)
    if conv is None or conv.verified_at is None or conv.account_pk is None:
        return False
    account = session.get(Account, conv.account_pk)
    assert account is not None
    current = active_binding(session, openid)
    if current is not None and current.cardholder_id == account.cardholder_id:
        return False
    if current is not None:
        current.ended_at, current.end_reason = now, "rebound"
    session.add(
        WeChatBinding(
            openid=openid,
            cardholder_id=account.cardholder_id,
            account_pk=account.id,
            conversation_id=conversation_id,
            bound_at=now,
        )
    )
    audit(session, conversation_id, "wechat.bound", account.account_id)
    return True


def unbind(session: Session, openid: str, now: datetime, reason: str) -> bool:
    """End the binding and the current conversation's verification; True when a binding ended."""
    follower = user(session, openid)
    binding = active_binding(session, openid)
    if binding is not None:
        binding.ended_at, binding.end_reason = now, reason
        audit(session, f"wechat:{reason}", "wechat.unbound", binding.conversation_id)
    conv = conversations.find(session, follower.conversation_id) if follower.conversation_id else None
    if conv is not None:
        _lapse(conv)
        conv.claimed_phone, conv.phone_proven = None, False
        if conv.mode != "human":  # the next message starts afresh; a person keeps theirs
            follower.conversation_id = None
    return binding is not None


def unsubscribed(session: Session, openid: str, now: datetime) -> None:
    follower = user(session, openid)
    follower.subscribed, follower.unsubscribed_at = False, now
    unbind(session, openid, now, "unsubscribe")
    audit(session, "wechat", "wechat.unsubscribe", follower.conversation_id or "")


def in_service_window(follower: WeChatUser | None, now: datetime) -> bool:
    """May a customer-service message reach this follower now (subscribed, wrote within 48 hours)?"""
    if follower is None or not follower.subscribed or follower.last_interaction_at is None:
        return False
    return now - follower.last_interaction_at < SERVICE_WINDOW


def follower_of(session: Session, conversation_id: str) -> WeChatUser | None:
    """The follower a WeChat conversation belongs to (its current one, or one a binding names)."""
    found = session.scalar(select(WeChatUser).where(WeChatUser.conversation_id == conversation_id))
    if found is not None:
        return found
    openid = session.scalar(
        select(WeChatBinding.openid).where(WeChatBinding.conversation_id == conversation_id).limit(1)
    )
    return session.scalar(select(WeChatUser).where(WeChatUser.openid == openid)) if openid else None


def require_service_window(session: Session, conversation_id: str, now: datetime) -> str:
    """The openid a reply in this conversation goes to; OutsideServiceWindow when none may go."""
    follower = follower_of(session, conversation_id)
    if follower is None or not in_service_window(follower, now):
        raise OutsideServiceWindow(
            "WeChat accepts customer-service messages only within 48 hours of the holder's last message",
            conversation_id=conversation_id,
        )
    return follower.openid


def note_stop_request(session: Session, openid: str, external_id: str, now: datetime) -> bool:
    """After a turn: if the bot read the message as a stop request (退订), this follower gets no more
    reminders. True when that was recorded now."""
    intent = session.scalar(
        select(Message.intent).where(Message.channel == CHANNEL, Message.external_id == external_id)
    )
    follower = user(session, openid)
    if intent != "stop_contact" or follower.reminders_opted_out_at is not None:
        return False
    follower.reminders_opted_out_at = now
    audit(session, "wechat", "wechat.reminders_opted_out", follower.conversation_id or "")
    return True


def bound_cardholders(session: Session) -> set[int]:
    """Holders a reminder can reach on WeChat: bound, still following, not opted out."""
    return set(
        session.scalars(
            select(WeChatBinding.cardholder_id)
            .join(WeChatUser, WeChatUser.openid == WeChatBinding.openid)
            .where(
                WeChatBinding.ended_at.is_(None),
                WeChatUser.subscribed.is_(True),
                WeChatUser.reminders_opted_out_at.is_(None),
            )
        )
    )


def reminder_openid(session: Session, cardholder_id: int) -> str | None:
    """The follower a reminder to this holder goes to, if any (the latest binding)."""
    return session.scalar(
        select(WeChatBinding.openid)
        .join(WeChatUser, WeChatUser.openid == WeChatBinding.openid)
        .where(
            WeChatBinding.cardholder_id == cardholder_id,
            WeChatBinding.ended_at.is_(None),
            WeChatUser.subscribed.is_(True),
        )
        .order_by(WeChatBinding.bound_at.desc())
        .limit(1)
    )


def reminder_decision(
    session: Session,
    account: Account,
    openid: str,
    now: datetime,
    rules: ContactPolicy,
    exclude_attempt: int | None = None,
    selected_at: datetime | None = None,
) -> compliance.Decision:
    """One WeChat reminder, now: this follower's own 退订 of reminders, then the one decision every
    contact takes (ledger.compliance.decide_contact: window, caps per person across channels, holds,
    and a payment since `selected_at`)."""
    if user(session, openid).reminders_opted_out_at is not None:
        return compliance.Decision("skip", "opted_out")
    return compliance.decide_contact(
        session,
        phone=account.cardholder.phone,
        account_pk=account.id,
        channel="wechat",
        purpose="campaign",
        at=now,
        rules=rules,
        selected_at=selected_at,
        exclude_attempt=exclude_attempt,
    )
