"""Conduct records: holds, complaints, contact preferences per person, number suppressions,
requests from people not verified, hardship. Each change is audited.

A person is a phone number and the holder behind it: a preference set for one card applies to
every card of that phone, and says who asked and when.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import date, datetime, timedelta
from typing import Literal, cast

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ledger.accounts import audit, get_account
from ledger.clock import Clock
from ledger.errors import NotFound
from ledger.kinds import ContactChannel, PreferenceSource, PreferenceValue
from ledger.masking import mask
from ledger.models import (
    Account,
    Cardholder,
    Complaint,
    ContactPreference,
    ContactRequest,
    Hardship,
    Hold,
    LedgerEntry,
    Message,
    NumberSuppression,
)

HOLD_KINDS = ("dispute", "deceased", "legal_hold")
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: read aloud and typed back without confusion
_DIGITS = "23456789"
PREFERENCE_VALUES = {
    "sms": ("allowed", "opted_out", "restricted"),  # restricted: ledger/contact_preferences.py
    "calls": ("allowed", "opted_out", "restricted"),
    "wechat": ("allowed", "opted_out", "restricted"),
    "third_party": ("forbidden",),
}
RequestKind = Literal["stop_contact", "deceased", "dispute", "identity_theft", "wrong_number", "third_party"]
HardshipKind = Literal["illness", "job_loss", "business", "family", "disaster", "other"]


def place_hold(session: Session, account_id: str, kind: str, reason: str, actor: str) -> Hold:
    """Stop collection contact on an account (dispute, deceased, legal); idempotent per kind."""
    if kind not in HOLD_KINDS:
        raise ValueError(f"unknown hold kind {kind}")
    account = get_account(session, account_id)
    hold = session.scalar(select(Hold).where(Hold.account_pk == account.id, Hold.kind == kind, Hold.active))
    if hold is None:
        hold = Hold(account_pk=account.id, kind=kind, reason=mask(reason)[:500], active=True)
        session.add(hold)
        audit(session, actor, "hold.place", account_id, kind=kind)
    session.flush()
    return hold


def record_complaint(
    session: Session, account_pk: int | None, conversation_id: str | None, text: str, clock: Clock, actor: str
) -> Complaint:
    """Record a complaint with a reference the holder can quote: TS20261129-K7Q2MD.

    The code after the date starts with a letter, so the reference never reads as a long
    number, which masking would hide as if it were a card number.
    """
    code = secrets.choice(_LETTERS) + "".join(secrets.choice(_LETTERS + _DIGITS) for _ in range(5))
    reference = f"TS{clock.today():%Y%m%d}-{code}"
    complaint = Complaint(
        reference=reference,
        account_pk=account_pk,
        conversation_id=conversation_id,
        text=mask(text)[:2000],
        status="open",
    )
    session.add(complaint)
    audit(session, actor, "complaint.record", reference, conversation_id=conversation_id)
    session.flush()
    return complaint


def set_preference(
    session: Session,
    cardholder_id: int,
    channel: str,
    value: str,
    clock: Clock,
    actor: str,
    source: PreferenceSource = "chat",
    rules: dict[str, object] | None = None,
) -> ContactPreference:
    """Record a contact preference at once (退订, "only SMS", "don't call my family") for the person:
    every holder record of the same phone, with who asked and when. Returns this holder's record."""
    if value not in PREFERENCE_VALUES.get(channel, ()):
        raise ValueError(f"{channel} cannot be {value}")
    channel, value = cast(ContactChannel, channel), cast(PreferenceValue, value)  # checked just above
    phone = session.scalar(select(Cardholder.phone).where(Cardholder.id == cardholder_id))
    holders = cardholders_by_phone(session, phone) if phone else [cardholder_id]
    mine: ContactPreference | None = None
    for holder in holders:
        pref = session.scalar(
            select(ContactPreference).where(
                ContactPreference.cardholder_id == holder, ContactPreference.channel == channel
            )
        )
        if pref is None:
            pref = ContactPreference(cardholder_id=holder, channel=channel, value=value, changed_at=clock.now())
            session.add(pref)
        if pref.value != value or pref.asked_by is None or rules is not None or pref.rules is not None:
            pref.value, pref.changed_at, pref.rules = value, clock.now(), rules
        pref.asked_by, pref.source = actor[:64], source
        if holder == cardholder_id:
            mine = pref
    audit(
        session,
        actor,
        "preference.set",
        str(cardholder_id),
        channel=channel,
        value=value,
        rules=rules,
        holders=len(holders),
    )
    session.flush()
    assert mine is not None
    return mine


def suppress_number(
    session: Session,
    phone: str,
    channel: str,
    reason: Literal["opt_out", "wrong_number"],
    clock: Clock,
    actor: str,
    account_pk: int | None = None,
) -> NumberSuppression:
    """Stop writing to a number: its owner's 退订 (every account), or "not the holder's number any
    more" (that account, until an agent reviews it). Idempotent."""
    found = session.scalar(
        select(NumberSuppression).where(
            NumberSuppression.phone == phone,
            NumberSuppression.channel == channel,
            NumberSuppression.reason == reason,
            NumberSuppression.account_pk.is_(None)
            if account_pk is None
            else NumberSuppression.account_pk == account_pk,
            NumberSuppression.active,
        )
    )
    if found is None:
        found = NumberSuppression(
            phone=phone,
            channel=channel,
            account_pk=account_pk,
            reason=reason,
            asked_by=actor[:64],
            active=True,
            created_at=clock.now(),
        )
        session.add(found)
        audit(session, actor, "number.suppress", mask(phone), channel=channel, reason=reason, account_pk=account_pk)
    session.flush()
    return found


def review_suppression(session: Session, suppression_id: int, agent: str, keep: bool, clock: Clock) -> None:
    """An agent checked a wrong-number report: keep it (the number stays silent) or lift it."""
    row = session.get(NumberSuppression, suppression_id)
    if row is None:
        raise NotFound("no such suppression", suppression_id=suppression_id)
    row.reviewed_by, row.reviewed_at, row.active = agent, clock.now(), keep
    audit(session, agent, "number.review", str(suppression_id), keep=keep)
    session.flush()


def open_requests(session: Session) -> list[ContactRequest]:
    """Requests from people not verified that a person has not dealt with yet, oldest first."""
    return list(
        session.scalars(
            select(ContactRequest).where(ContactRequest.status == "open").order_by(ContactRequest.created_at)
        )
    )


def close_request(session: Session, reference: str, agent: str) -> ContactRequest:
    request = session.scalar(select(ContactRequest).where(ContactRequest.reference == reference))
    if request is None:
        raise NotFound("no such request", reference=reference)
    request.status = "done"
    audit(session, agent, "request.close", reference)
    session.flush()
    return request


def unreviewed_suppressions(session: Session) -> list[NumberSuppression]:
    """Wrong-number reports still silencing a number, waiting for an agent."""
    return list(
        session.scalars(
            select(NumberSuppression)
            .where(
                NumberSuppression.active,
                NumberSuppression.reason == "wrong_number",
                NumberSuppression.reviewed_at.is_(None),
            )
            .order_by(NumberSuppression.created_at)
        )
    )


def open_request(
    session: Session,
    kind: RequestKind,
    conversation_id: str,
    channel: str,
    phone: str | None,
    text: str,
    clock: Clock,
) -> ContactRequest:
    """A ticket for a person: someone not verified asked for something that would change an account.
    Nothing changes until a person has checked it."""
    code = secrets.choice(_LETTERS) + "".join(secrets.choice(_LETTERS + _DIGITS) for _ in range(5))
    request = ContactRequest(
        reference=f"RQ{clock.today():%Y%m%d}-{code}",
        kind=kind,
        conversation_id=conversation_id,
        channel=channel,
        phone=phone,
        text=mask(text)[:2000],
        status="open",
        created_at=clock.now(),
    )
    session.add(request)
    audit(session, conversation_id, "request.open", request.reference, kind=kind)
    session.flush()
    return request


def record_hardship(
    session: Session, account_id: str, kind: HardshipKind, text: str, pause_days: int, clock: Clock, actor: str
) -> Hardship:
    """A verified holder's hardship, with its kind: reminders to the person pause for `pause_days`."""
    account = get_account(session, account_id)
    row = Hardship(
        account_pk=account.id,
        phone=account.cardholder.phone,
        kind=kind,
        text=mask(text)[:2000],
        recorded_by=actor[:64],
        recorded_at=clock.now(),
        pause_until=clock.today() + timedelta(days=pause_days),
    )
    session.add(row)
    audit(session, actor, "hardship.record", account_id, kind=kind, pause_days=pause_days)
    session.flush()
    return row


SMS_OPT_OUT_WORDS = frozenset({"退订", "TD", "T", "退订短信", "取消订阅"})


def is_sms_opt_out(text: str) -> bool:
    """The carrier-style reply that stops SMS to the number it came from (退订 / TD / T)."""
    plain = unicodedata.normalize("NFKC", text).strip().strip("。.!！ ").upper()
    return plain in SMS_OPT_OUT_WORDS


# Built once (the guard asks on every turn before verification): see ledger/conversations.py.
_NAMES_BY_PHONE = select(Cardholder.name).where(Cardholder.phone == bindparam("phone_"))
_NAMES_BY_ACCOUNT = (
    select(Cardholder.name)
    .join(Account, Account.cardholder_id == Cardholder.id)
    .where(Account.id == bindparam("account_pk_"))
)


def holder_names(session: Session, phone: str | None, account_pk: int | None) -> list[str]:
    """The names of the holders a conversation is tied to (by its phone or account), for the guard."""
    names: set[str] = set()
    if phone:
        names |= set(session.scalars(_NAMES_BY_PHONE, {"phone_": phone}))
    if account_pk is not None:
        names |= set(session.scalars(_NAMES_BY_ACCOUNT, {"account_pk_": account_pk}))
    return sorted(names)


def last_message_from_person(session: Session, conversation_pk: int) -> datetime | None:
    """When the person last wrote in this conversation: a message soon after is a reply."""
    return session.scalar(
        select(func.max(Message.created_at)).where(Message.conversation_pk == conversation_pk, Message.sender == "user")
    )


def cardholders_by_phone(session: Session, phone: str) -> list[int]:
    return list(session.scalars(select(Cardholder.id).where(Cardholder.phone == phone)))


def accounts_by_phone(session: Session, phone: str) -> list[str]:
    return list(
        session.scalars(
            select(Account.account_id)
            .join(Cardholder, Account.cardholder_id == Cardholder.id)
            .where(Cardholder.phone == phone)
        )
    )


def cardholder_of(session: Session, account_id: str) -> int:
    return get_account(session, account_id).cardholder_id


def recent_payments(session: Session, account_id: str, since: date) -> list[tuple[date, int]]:
    """Payments posted on or after `since`, newest first."""
    account = get_account(session, account_id)
    rows = session.execute(
        select(LedgerEntry.effective_date, LedgerEntry.amount)
        .where(
            LedgerEntry.account_pk == account.id,
            LedgerEntry.kind == "payment",
            LedgerEntry.effective_date >= since,
        )
        .order_by(LedgerEntry.effective_date.desc())
    )
    return [(d, a) for d, a in rows]


def account_pk(session: Session, account_id: str) -> int:
    pk = session.scalar(select(Account.id).where(Account.account_id == account_id))
    if pk is None:
        raise ValueError("no such account")
    return pk
