"""Conduct records: holds, complaints, contact preferences. Each change is audited."""

from __future__ import annotations

import secrets
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.accounts import audit, get_account
from ledger.clock import Clock
from ledger.masking import mask
from ledger.models import Account, Cardholder, Complaint, ContactPreference, Hold, LedgerEntry

HOLD_KINDS = ("dispute", "deceased", "legal_hold")
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: read aloud and typed back without confusion
_DIGITS = "23456789"
PREFERENCE_VALUES = {"sms": ("allowed", "opted_out"), "calls": ("allowed", "opted_out"), "third_party": ("forbidden",)}


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
    session: Session, cardholder_id: int, channel: str, value: str, clock: Clock, actor: str
) -> ContactPreference:
    """Record a contact preference at once (退订, "only SMS", "don't call my family")."""
    if value not in PREFERENCE_VALUES.get(channel, ()):
        raise ValueError(f"{channel} cannot be {value}")
    pref = session.scalar(
        select(ContactPreference).where(
            ContactPreference.cardholder_id == cardholder_id, ContactPreference.channel == channel
        )
    )
    if pref is None:
        pref = ContactPreference(cardholder_id=cardholder_id, channel=channel, value=value, changed_at=clock.now())
        session.add(pref)
    elif pref.value != value:
        pref.value, pref.changed_at = value, clock.now()
    audit(session, actor, "preference.set", str(cardholder_id), channel=channel, value=value)
    session.flush()
    return pref


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
