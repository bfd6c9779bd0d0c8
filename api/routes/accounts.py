"""Admin: import accounts, read the account view, post payments."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import AdminDep, ClockDep, PolicyDep, SessionDep
from api.schemas import AccountCreate, AccountPublic, PaymentCreate, PaymentPublic, money, to_fen
from api.views import account_public
from ledger import accounts

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], dependencies=[AdminDep])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AccountPublic)
def create_account(body: AccountCreate, session: SessionDep, policy: PolicyDep, clock: ClockDep) -> AccountPublic:
    record = accounts.AccountRecord(
        account_id=body.account_id,
        holder_name=body.holder_name,
        phone=body.phone,
        id_last4=body.id_last4,
        card_last4=body.card_last4,
        credit_limit=to_fen(body.credit_limit),
        statement_balance=to_fen(body.statement_balance),
        minimum_payment=to_fen(body.minimum_payment),
        statement_date=body.statement_date,
        due_date=body.due_date,
        paid_since_statement=to_fen(body.paid_since_statement),
        daily_interest_rate=body.daily_interest_rate,
        late_fee_rate=body.late_fee_rate,
        flags=tuple(body.flags),
        timezone=body.timezone,
    )
    accounts.upsert_account(session, record, actor="admin")
    return account_public(accounts.account_view(session, body.account_id, policy, clock), policy)


@router.get("/{account_id}", response_model=AccountPublic)
def get_account(account_id: str, session: SessionDep, policy: PolicyDep, clock: ClockDep) -> AccountPublic:
    return account_public(accounts.account_view(session, account_id, policy, clock), policy)


@router.post("/{account_id}/payments", status_code=status.HTTP_201_CREATED, response_model=PaymentPublic)
def post_payment(
    account_id: str, body: PaymentCreate, session: SessionDep, policy: PolicyDep, clock: ClockDep
) -> PaymentPublic:
    entry, created = accounts.post_payment(
        session, account_id, to_fen(body.amount), body.paid_at, body.reference, policy, clock
    )
    view = account_public(accounts.account_view(session, account_id, policy, clock), policy)
    return PaymentPublic(
        reference=body.reference,
        amount=money(entry.amount),
        paid_on=entry.effective_date,
        created=created,
        account=view,
    )
