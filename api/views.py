"""Ledger views to API models: the one place fen become yuan strings."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.schemas import (
    AccountPublic,
    BreakdownPublic,
    PlanPublic,
    PreferenceValue,
    PromisePublic,
    ScheduleRowPublic,
    Transcript,
    TranscriptEntry,
    money,
)
from ledger import agents, contact_preferences, conversations
from ledger.accounts import AccountView, fee_policy_for
from ledger.agreements import PlanState
from ledger.masking import mask
from ledger.models import Message, Plan
from ledger.policy import Policy


def plan_public(plan: Plan, state: PlanState | None) -> PlanPublic:
    """A plan with its life so far; one not yet begun (pending, cancelled) shows its rows as agreed."""
    if state is not None:
        rows = [
            ScheduleRowPublic(due_date=r.due_date, amount=money(r.amount), status=r.status, paid=money(r.paid))
            for r in state.rows
        ]
        figures = {
            "next_due_date": state.next_due_date if state.status == "active" else None,
            "next_due_amount": money(state.next_due_amount if state.status == "active" else 0),
            "paid_periods": state.paid_periods,
            "missed_periods": state.missed_periods,
            "remaining": money(state.remaining),
        }
    elif plan.status in ("completed", "broken"):
        # Ended on an earlier statement: its rows as stored when it ended.
        rows = [
            ScheduleRowPublic(
                due_date=r.due_date,
                amount=money(r.amount),
                status=r.status,
                paid=money(r.paid),
            )
            for r in plan.rows
        ]
        figures = {
            "next_due_date": None,
            "next_due_amount": money(0),
            "paid_periods": sum(1 for r in plan.rows if r.status == "paid"),
            "missed_periods": sum(1 for r in plan.rows if r.status == "missed"),
            "remaining": money(
                0 if plan.status == "completed" else sum(r.amount - r.paid for r in plan.rows if r.status != "paid")
            ),
        }
    else:
        rows = [
            ScheduleRowPublic(due_date=r.due_date, amount=money(r.amount), status="due", paid="0.00") for r in plan.rows
        ]
        figures = {
            "next_due_date": plan.rows[0].due_date if plan.rows else None,
            "next_due_amount": money(plan.rows[0].amount if plan.rows else 0),
            "paid_periods": 0,
            "missed_periods": 0,
            "remaining": money(sum(r.amount for r in plan.rows)),
        }
    return PlanPublic(
        plan_id=plan.plan_id,
        type=plan.type,
        status=plan.status,
        principal=money(plan.principal),
        periods=plan.periods,
        fee_rate_per_period=str(plan.fee_rate_per_period),
        total_fee=money(plan.total_fee),
        apr=f"{plan.apr:.4f}",
        schedule=rows,
        created_via=plan.created_via,
        **figures,
    )


def account_public(view: AccountView, policy: Policy) -> AccountPublic:
    acc, st, pos = view.account, view.statement, view.position
    fees = fee_policy_for(acc, policy)
    due = pos.amount_due
    prefs: dict[str, PreferenceValue] = {}
    for channel, (value, changed, asked_by, stored) in view.preferences.items():
        prefs[channel] = value
        prefs[f"{channel}_changed_at"] = changed.isoformat() if changed else None
        prefs[f"{channel}_asked_by"] = mask(asked_by) if asked_by else None  # a conversation, an agent, "import"
        if channel in contact_preferences.CHANNELS:  # what a channel still allows, exactly as asked
            rules = contact_preferences.ChannelRules.stored(value, stored)
            prefs[f"{channel}_windows"] = [w.as_json() for w in rules.windows]
            prefs[f"{channel}_places"] = {p: "forbidden" for p in sorted(rules.forbidden_places)}
    calls_places = prefs.get("calls_places")
    prefs["places"] = dict(calls_places) if isinstance(calls_places, dict) else {}  # where calls may not reach them
    return AccountPublic(
        account_id=acc.account_id,
        holder_name=acc.cardholder.name,
        phone=acc.cardholder.phone,
        id_last4=acc.cardholder.id_last4,
        card_last4=acc.card_last4,
        credit_limit=money(acc.credit_limit),
        statement_balance=money(st.statement_balance),
        minimum_payment=money(st.minimum_payment),
        statement_date=st.statement_date,
        due_date=st.due_date,
        paid_since_statement=money(st.paid_since_statement),
        interest_start=st.interest_start,
        daily_interest_rate=str(fees.daily_interest_rate),
        late_fee_rate=str(fees.late_fee.rate),
        flags=view.flags,
        timezone=acc.cardholder.timezone,
        overdue_days=pos.overdue_days,
        bucket=pos.bucket,
        amount_due=money(due.total),
        breakdown=BreakdownPublic(
            principal=money(due.principal),
            interest=money(due.interest),
            late_fee=money(due.late_fee),
            plan_fee=money(due.plan_fee),
            total=money(due.total),
            grace_applied=pos.grace_applied,
            tolerance_applied=pos.tolerance_applied,
        ),
        outstanding=money(pos.outstanding.total),
        credit=money(pos.credit),
        plans=[plan_public(p, view.plan_states.get(p.plan_id)) for p in view.plans],
        promises=[
            PromisePublic(promise_id=p.promise_id, amount=money(p.amount), due_date=p.due_date, status=status)
            for p, status in view.promises
        ],
        contact_preferences=prefs,
        disputes=[{"kind": h.kind, "reason": mask(h.reason)} for h in view.holds if h.kind == "dispute"],
        complaints=[{"reference": c.reference, "status": c.status} for c in view.complaints],
    )


def transcript_for(session: Session, conversation_id: str, role: str, username: str) -> Transcript:
    """Every message of a conversation, masked; 404 unless `role`/`username` may read it (the admin
    and supervisors read any, an agent only one it has claimed)."""
    conv = conversations.find(session, conversation_id)
    if conv is None or not agents.may_read(session, role, username, conversation_id):
        raise ApiError(404, "not_found", "no such conversation, or not one you have claimed")
    rows = session.scalars(select(Message).where(Message.conversation_pk == conv.id).order_by(Message.seq))
    return Transcript(
        conversation_id=conv.conversation_id,
        channel=conv.channel,
        mode=conv.mode,
        verified=conv.verified_at is not None,
        messages=[
            TranscriptEntry(
                seq=m.seq,
                at=m.created_at.isoformat(),
                sender=m.sender,
                channel=m.channel,
                text=mask(m.text),
                intent=m.intent if m.sender == "user" else None,
                confidence=m.confidence if m.sender == "user" else None,
            )
            for m in rows
        ],
    )
