"""Ledger views to API models: the one place fen become yuan strings."""

from __future__ import annotations

from api.schemas import AccountPublic, BreakdownPublic, PlanPublic, PromisePublic, ScheduleRowPublic, money
from ledger.accounts import AccountView, fee_policy_for
from ledger.masking import mask
from ledger.policy import Policy


def account_public(view: AccountView, policy: Policy) -> AccountPublic:
    acc, st, pos = view.account, view.statement, view.position
    fees = fee_policy_for(acc, policy)
    due = pos.amount_due
    prefs: dict[str, str | None] = {}
    for channel, (value, changed, asked_by) in view.preferences.items():
        prefs[channel] = value
        prefs[f"{channel}_changed_at"] = changed.isoformat() if changed else None
        prefs[f"{channel}_asked_by"] = mask(asked_by) if asked_by else None  # a conversation, an agent, "import"
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
            total=money(due.total),
        ),
        outstanding=money(pos.outstanding.total),
        plans=[
            PlanPublic(
                plan_id=p.plan_id,
                type=p.type,
                status=p.status,
                principal=money(p.principal),
                periods=p.periods,
                fee_rate_per_period=str(p.fee_rate_per_period),
                total_fee=money(p.total_fee),
                apr=f"{p.apr:.4f}",
                schedule=[ScheduleRowPublic(due_date=r.due_date, amount=money(r.amount)) for r in p.rows],
                created_via=p.created_via,
            )
            for p in view.plans
        ],
        promises=[
            PromisePublic(promise_id=p.promise_id, amount=money(p.amount), due_date=p.due_date, status=status)
            for p, status in view.promises
        ],
        contact_preferences=prefs,
        disputes=[{"kind": h.kind, "reason": mask(h.reason)} for h in view.holds if h.kind == "dispute"],
        complaints=[{"reference": c.reference, "status": c.status} for c in view.complaints],
    )
