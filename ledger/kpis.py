"""Collection KPIs over a period, as docs/operations.md defines them, overall and by campaign, bucket and channel.

Rates are fractions (None when the denominator is zero). "Delivered" counts messages the
provider accepted; delivery receipts would refine it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.accounts import account_position, paid_between, promise_status
from ledger.calls import call_kpis
from ledger.duty import callback_kept
from ledger.fees import BUCKETS_ORDER
from ledger.models import (
    Account,
    AuditLog,
    Campaign,
    Complaint,
    ContactAttempt,
    ContactPreference,
    Conversation,
    HandoffTicket,
    LedgerEntry,
    OutboundSms,
    Plan,
    Promise,
)
from ledger.money import fen_to_yuan
from ledger.policy import Policy
from ledger.receipts import BILLED


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    return datetime.combine(start, time(0), tzinfo=zone), datetime.combine(end, time(0), tzinfo=zone)


def kpis(session: Session, start: date, end: date, policy: Policy, tz: str) -> dict[str, Any]:
    """KPIs for [start, end) in the app time zone."""
    t0, t1 = _bounds(start, end, tz)
    attempts = session.execute(
        select(ContactAttempt.account_pk, ContactAttempt.status, ContactAttempt.bucket, Campaign.campaign_id)
        .join(Campaign, Campaign.id == ContactAttempt.campaign_pk)
        .where(Campaign.created_at >= t0, Campaign.created_at < t1)
    ).all()
    targeted: dict[int, tuple[str, str]] = {}
    contacted: set[int] = set()
    for pk, status, bucket, campaign in attempts:
        if pk is None:  # campaign attempts always name an account; agent messages to a bare number do not
            continue
        targeted.setdefault(pk, (bucket, campaign))
        if status == "sent":
            contacted.add(pk)
    verified = set(
        session.scalars(
            select(Conversation.account_pk).where(
                Conversation.verified_at >= t0, Conversation.verified_at < t1, Conversation.account_pk.is_not(None)
            )
        )
    )
    rpc = {pk for pk in targeted if pk in verified}
    committed = set(
        session.scalars(select(Promise.account_pk).where(Promise.created_on >= start, Promise.created_on < end))
    )
    committed |= set(session.scalars(select(Plan.account_pk).where(Plan.created_on >= start, Plan.created_on < end)))
    ptp = {pk for pk in rpc if pk in committed}

    due = session.scalars(select(Promise).where(Promise.due_date >= start, Promise.due_date < end)).all()
    kept = 0
    for p in due:
        account = session.get(Account, p.account_pk)
        assert account is not None
        if promise_status(p, paid_between(session, account, p.created_on, p.due_date), end) == "kept":
            kept += 1

    offers = (
        session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "plan.offer", AuditLog.at >= t0, AuditLog.at < t1)
        )
        or 0
    )
    accepted = (
        session.scalar(
            select(func.count())
            .select_from(Plan)
            .where(Plan.created_via == "chat", Plan.created_on >= start, Plan.created_on < end)
        )
        or 0
    )

    overdue_at_start = repaid = 0
    rolled: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])  # bucket -> [accounts, rolled]
    for pk in targeted:
        account = session.get(Account, pk)
        assert account is not None
        _, before = account_position(session, account, policy, start)
        _, after = account_position(session, account, policy, end)
        overdue_at_start += before.amount_due.total
        rolled[before.bucket][0] += 1
        if BUCKETS_ORDER.index(after.bucket) > BUCKETS_ORDER.index(before.bucket):
            rolled[before.bucket][1] += 1
    if targeted:
        repaid = (
            session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                    LedgerEntry.kind == "payment",
                    LedgerEntry.account_pk.in_(list(targeted)),
                    LedgerEntry.effective_date >= start,
                    LedgerEntry.effective_date < end,
                )
            )
            or 0
        )

    convs = session.execute(
        select(Conversation.id, Conversation.channel).where(Conversation.created_at >= t0, Conversation.created_at < t1)
    ).all()
    with_ticket = set(
        session.scalars(
            select(HandoffTicket.conversation_pk).where(
                HandoffTicket.created_at >= t0,
                HandoffTicket.created_at < t1,
                # Handed to the queue only while the bot was away, and back with the bot before any
                # agent took it: no person handled it, so it is not a handoff (nor a lost containment).
                HandoffTicket.status != "recovered",
            )
        )
    )
    complaints = (
        session.scalar(
            select(func.count()).select_from(Complaint).where(Complaint.created_at >= t0, Complaint.created_at < t1)
        )
        or 0
    )
    holders = {session.get(Account, pk).cardholder_id for pk in targeted}  # type: ignore[union-attr]
    opted_out = (
        session.scalar(
            select(func.count())
            .select_from(ContactPreference)
            .where(
                ContactPreference.channel == "sms",
                ContactPreference.value == "opted_out",
                ContactPreference.changed_at >= t0,
                ContactPreference.changed_at < t1,
                ContactPreference.cardholder_id.in_(list(holders) or [-1]),
            )
        )
        or 0
    )
    sms_count = billed_sms(session, t0, t1)
    agent_minutes = _agent_minutes(session, t0, t1)
    costs = policy.costs
    worked = len(set(targeted) | verified)
    cost = (Decimal(agent_minutes) * costs.agent_minute_fen + sms_count * costs.sms_fen) if worked else Decimal(0)

    by_channel: dict[str, dict[str, Any]] = {}
    for channel in sorted({c for _, c in convs}):
        ids = [i for i, c in convs if c == channel]
        handed = sum(1 for i in ids if i in with_ticket)
        by_channel[channel] = {
            "conversations": len(ids),
            "handoff_rate": _rate(handed, len(ids)),
            "containment": _rate(len(ids) - handed, len(ids)),
        }
    by_group: dict[str, dict[str, dict[str, Any]]] = {"bucket": {}, "campaign": {}}
    for kind, index in (("bucket", 0), ("campaign", 1)):
        groups: defaultdict[str, set[int]] = defaultdict(set)
        for pk, info in targeted.items():
            groups[info[index]].add(pk)
        for key, pks in sorted(groups.items()):
            g_rpc = pks & rpc
            by_group[kind][key] = {
                "targeted": len(pks),
                "contact_rate": _rate(len(pks & contacted), len(pks)),
                "rpc_rate": _rate(len(g_rpc), len(pks)),
                "ptp_rate": _rate(len(g_rpc & ptp), len(g_rpc)),
            }
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "accounts_targeted": len(targeted),
        "contact_rate": _rate(len(contacted), len(targeted)),
        "rpc_rate": _rate(len(rpc), len(targeted)),
        "ptp_rate": _rate(len(ptp), len(rpc)),
        "promise_kept_rate": _rate(kept, len(due)),
        "plan_uptake": _rate(accepted, offers),
        "recovery_rate": _rate(int(repaid), overdue_at_start),
        "amount_repaid": fen_to_yuan(int(repaid)),
        "amount_overdue_at_start": fen_to_yuan(overdue_at_start),
        "roll_rate": {b: _rate(n_roll, n) for b, (n, n_roll) in sorted(rolled.items())},
        "handoff_rate": _rate(sum(1 for i, _ in convs if i in with_ticket), len(convs)),
        "complaint_rate": _rate(complaints, len(convs)),
        "opt_out_rate": _rate(opted_out, len(targeted)),
        "containment": _rate(sum(1 for i, _ in convs if i not in with_ticket), len(convs)),
        "cost_per_account": fen_to_yuan(int((cost / worked).quantize(Decimal(1)))) if worked else None,
        "conversations": len(convs),
        "sms_sent": sms_count,
        "agent_minutes": agent_minutes,
        "by_channel": by_channel,
        "by_bucket": by_group["bucket"],
        "by_campaign": by_group["campaign"],
        "handoffs": handoff_kpis(session, t0, t1, policy),
        "calls": call_kpis(session, t0, t1),
    }


def handoff_kpis(session: Session, t0: datetime, t1: datetime, policy: Policy) -> dict[str, Any]:
    """Handoffs asked for in [t0, t1) (not the bot's own outages): how many, how fast a person took
    them, how many waits were abandoned (withdrawn, or run out with nobody taking them), how many
    were answered outside working hours or with the queue full, and callbacks kept (an agent took
    the ticket by the callback time plus the grace) of those due by t1."""
    rows = session.execute(
        select(
            HandoffTicket.created_at,
            HandoffTicket.claimed_at,
            HandoffTicket.status,
            HandoffTicket.parked,
            HandoffTicket.timed_out_at,
            HandoffTicket.callback_at,
        ).where(
            HandoffTicket.created_at >= t0,
            HandoffTicket.created_at < t1,
            HandoffTicket.status != "recovered",
            HandoffTicket.reason != "service_unavailable",
        )
    ).all()
    to_claim = sorted((claimed - created).total_seconds() / 60 for created, claimed, *_ in rows if claimed is not None)
    withdrawn = sum(1 for r in rows if r.status == "withdrawn")
    timed_out = sum(1 for r in rows if r.timed_out_at is not None)
    abandoned = sum(1 for r in rows if r.status == "withdrawn" or (r.timed_out_at is not None and r.claimed_at is None))
    grace = timedelta(minutes=policy.handoff.callback_grace_minutes)
    callbacks = [r for r in rows if r.callback_at is not None]
    due = [r for r in callbacks if r.callback_at + grace < t1]
    kept = sum(1 for r in due if callback_kept(r.callback_at, r.claimed_at, policy.handoff))
    return {
        "requested": len(rows),
        "claimed": len(to_claim),
        "minutes_to_claim_median": round(median(to_claim), 1) if to_claim else None,
        "minutes_to_claim_max": round(to_claim[-1], 1) if to_claim else None,
        "unstaffed": sum(1 for r in rows if not r.parked and r.timed_out_at is None),
        "abandoned_waits": abandoned,
        "withdrawn": withdrawn,
        "timed_out": timed_out,
        "callbacks": len(callbacks),
        "callbacks_due": len(due),
        "callbacks_kept": kept,
        "callback_kept_rate": _rate(kept, len(due)),
    }


def _agent_minutes(session: Session, t0: datetime, t1: datetime) -> int:
    """Minutes from each claim to the release or close that followed it, from the audit log."""
    events = session.execute(
        select(AuditLog.subject, AuditLog.action, AuditLog.at)
        .where(
            AuditLog.action.in_(("handoff.claim", "handoff.release", "handoff.close")),
            AuditLog.at >= t0,
            AuditLog.at < t1,
        )
        .order_by(AuditLog.at)
    ).all()
    open_at: dict[str, datetime] = {}
    seconds = 0.0
    for subject, action, at in events:
        if action == "handoff.claim":
            open_at.setdefault(subject, at)
        elif subject in open_at:
            seconds += (at - open_at.pop(subject)).total_seconds()
    return round(seconds / 60)


def billed_sms(session: Session, t0: datetime, t1: datetime) -> int:
    """SMS handed to the provider in [t0, t1) that it charges for: sent, whatever its receipt says
    later (delivered or undelivered), but not one refused at hand-over or failed by the provider."""
    return (
        session.scalar(
            select(func.count())
            .select_from(OutboundSms)
            .where(OutboundSms.created_at >= t0, OutboundSms.created_at < t1, OutboundSms.status.in_(BILLED))
        )
        or 0
    )
