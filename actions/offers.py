"""What negotiation keeps and reads: the offer waiting for the holder (the `pending_offer` slot),
the entities of the latest message, and an offer's figures as the replies say them."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from sqlalchemy.orm import Session

from actions.context import chinese_date, clock, money, percent, policy
from ledger import conversations, negotiation
from ledger.errors import LedgerError
from ledger.money import yuan_to_fen
from ledger.plans import PlanOffer

CONFIRM_BUTTONS = [{"title": "确认办理", "payload": "/affirm"}, {"title": "再想想", "payload": "/deny"}]


def entity(tracker: Tracker, name: str) -> dict[str, Any] | None:
    return next((e for e in tracker.latest_message.get("entities", []) if e.get("entity") == name), None)


def entity_date(tracker: Tracker) -> date | None:
    ent = entity(tracker, "date")
    iso = ((ent or {}).get("additional_info") or {}).get("iso")
    return date.fromisoformat(iso) if iso else None


def entity_amount(tracker: Tracker) -> int | None:
    ent = entity(tracker, "amount")
    try:
        return yuan_to_fen(Decimal(str(ent["value"])).quantize(Decimal("0.01"))) if ent else None
    except (LedgerError, ArithmeticError):
        return None


def offer_vars(offer: PlanOffer) -> dict[str, Any]:
    return {
        "periods": offer.periods,
        "per_period": money(offer.first_amount),
        "total_fee": money(offer.total_fee),
        "apr": percent(offer.apr, places=2),
        "total": money(offer.total),
        "first_due": chinese_date(offer.schedule[0].due_date),
        "pay_on": chinese_date(offer.schedule[0].due_date),
        "amount": money(offer.principal),
    }


def pending(tracker: Tracker) -> dict[str, Any] | None:
    raw = tracker.get_slot("pending_offer")
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _pending(kind: str, **terms: Any) -> SlotSet:
    return SlotSet("pending_offer", json.dumps({"kind": kind, **terms}))


def verified_situation(session: Session, sender_id: str) -> tuple[str, negotiation.Situation] | None:
    """The verified holder's account id and what negotiation needs to know of it; None when not verified."""
    account_id = conversations.verified_account_id(session, sender_id)
    if account_id is None:
        return None
    return account_id, negotiation.situation(session, account_id, policy(), clock())
