"""Delivery receipts: what the provider later says became of an SMS we handed it.

Twilio reports each message's status to our callback (queued, sending, sent, then delivered,
undelivered or failed), possibly more than once and not always in order. A receipt only ever
moves a message forward: a late "sent" never undoes "delivered", and a final status stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import OutboundSms

# How far along each status is; the three finals are as far as a message goes.
_STAGE = {"queued": 0, "accepted": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
FINAL = frozenset({"delivered", "undelivered", "failed"})
BILLED = ("sent", "delivered", "undelivered")  # the provider took it (its receipt may come later)


@dataclass(frozen=True)
class ReceiptOutcome:
    """`recorded`: the message's status is now `status`; `unchanged`: it already said as much or
    more; `unknown`: no message we sent has that id (another account's, or a forged one)."""

    outcome: Literal["recorded", "unchanged", "unknown"]
    status: str | None = None


def next_status(current: str, reported: str) -> str | None:
    """The status after a receipt saying `reported`, or None if it changes nothing.

    Our own statuses are "sent" (handed over) and "failed" (the hand-over was refused, so the
    provider has nothing to report); a final status stays as it is.
    """
    if reported not in _STAGE or current in FINAL or _STAGE[reported] <= _STAGE.get(current, 0):
        return None
    return reported


def record_receipt(session: Session, provider_id: str, reported: str) -> ReceiptOutcome:
    """Apply the provider's receipt to the message it names."""
    sms = session.scalar(select(OutboundSms).where(OutboundSms.provider_id == provider_id).with_for_update())
    if sms is None:
        return ReceiptOutcome("unknown")
    status = next_status(sms.status, reported)
    if status is None:
        return ReceiptOutcome("unchanged", sms.status)
    sms.status = status
    return ReceiptOutcome("recorded", status)
