"""Calls kept between webhook turns, their outcomes (on the call and its contact attempt), and call KPIs.

The decisions are in ledger/voice.py; this module only reads and writes what they need.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import voice
from ledger.models import ContactAttempt, Conversation, Message, Plan, Promise, VoiceCall

OUTCOMES: tuple[voice.CallOutcome, ...] = ("right_party", "promise", "refusal", "unverified", "machine", "no_answer")


def find(session: Session, call_sid: str) -> VoiceCall | None:
    return session.scalar(select(VoiceCall).where(VoiceCall.call_sid == call_sid))


def start_inbound(session: Session, call_sid: str, phone: str | None, provider: str) -> VoiceCall:
    call = VoiceCall(
        call_sid=call_sid,
        direction="inbound",
        phone=phone,
        conversation_id=f"voice-{call_sid}"[:64],
        provider=provider,
        status="in-progress",
        turn=0,
        silences=0,
    )
    session.add(call)
    session.flush()
    return call


def placed(
    session: Session, attempt: ContactAttempt, call_sid: str, url: str, provider: str, status: str = "queued"
) -> VoiceCall:
    """An outbound call handed to the provider for a campaign attempt."""
    call = VoiceCall(
        call_sid=call_sid,
        direction="outbound-api",
        phone=attempt.to_phone,
        conversation_id=f"voice-{call_sid}"[:64],
        attempt_pk=attempt.id,
        account_pk=attempt.account_pk,
        provider=provider,
        url=url,
        status=status,
        turn=0,
        silences=0,
    )
    session.add(call)
    session.flush()
    return call


def outbox(session: Session, phone: str) -> list[VoiceCall]:
    return list(
        session.scalars(
            select(VoiceCall)
            .where(VoiceCall.phone == phone, VoiceCall.direction == "outbound-api")
            .order_by(VoiceCall.id)
        )
    )


def _conversation(session: Session, call: VoiceCall) -> Conversation | None:
    if call.conversation_id is None:
        return None
    return session.scalar(select(Conversation).where(Conversation.conversation_id == call.conversation_id))


def verified(session: Session, call: VoiceCall) -> bool:
    conv = _conversation(session, call)
    return conv is not None and conv.verified_at is not None and conv.account_pk is not None


def finish(session: Session, call: VoiceCall, status: str, answered_by: str | None) -> voice.CallOutcome | None:
    """Record the provider's report on the call; once it has ended, its outcome, on the call and on the
    campaign attempt that placed it. A repeated or late report changes nothing already decided."""
    call.status = status
    if answered_by and not call.answered_by:
        call.answered_by = answered_by
    if status not in ("completed", *voice.NOT_ANSWERED):
        return None
    if call.outcome is not None:
        return call.outcome  # type: ignore[return-value]
    conv = _conversation(session, call)
    is_verified = conv is not None and conv.verified_at is not None and conv.account_pk is not None
    promised = refused = False
    if conv is not None and is_verified:
        account = conv.account_pk
        promised = bool(
            session.scalar(
                select(func.count())
                .select_from(Promise)
                .where(Promise.account_pk == account, Promise.created_at >= call.created_at)
            )
            or session.scalar(
                select(func.count())
                .select_from(Plan)
                .where(Plan.account_pk == account, Plan.created_at >= call.created_at)
            )
        )
        refused = bool(
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.conversation_pk == conv.id, Message.sender == "user", Message.intent == "refuse_to_pay")
            )
        )
    outcome = voice.call_outcome(status, call.answered_by, is_verified, promised, refused)
    call.outcome = outcome
    if call.attempt_pk is not None:
        attempt = session.get(ContactAttempt, call.attempt_pk)
        if attempt is not None:
            attempt.outcome = outcome
    return outcome


def call_kpis(session: Session, t0: datetime, t1: datetime) -> dict[str, Any]:
    """Calls begun in [t0, t1): placed by us, taken from holders, and what became of them."""
    rows = session.execute(
        select(VoiceCall.direction, VoiceCall.outcome, func.count())
        .where(VoiceCall.created_at >= t0, VoiceCall.created_at < t1)
        .group_by(VoiceCall.direction, VoiceCall.outcome)
    ).all()
    outcomes = dict.fromkeys(OUTCOMES, 0)
    placed_n = inbound = 0
    for direction, outcome, n in rows:
        if direction == "inbound":
            inbound += n
        else:
            placed_n += n
        if outcome in outcomes:
            outcomes[outcome] += n
    reached = outcomes["right_party"] + outcomes["promise"] + outcomes["refusal"]
    ended = sum(outcomes.values())
    return {
        "placed": placed_n,
        "inbound": inbound,
        "outcomes": outcomes,
        "right_party_rate": round(reached / ended, 4) if ended else None,
    }
