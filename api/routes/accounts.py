"""Admin: import accounts, read the account view, post payments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from api.deps import AdminDep, ClockDep, PolicyDep, SessionDep
from api.schemas import (
    ID_PATTERN,
    AccountCreate,
    AccountPublic,
    PaymentCreate,
    PaymentPublic,
    errors,
    money,
    to_fen,
)
from api.schemas.links import link
from api.views import account_public
from ledger import accounts

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], dependencies=[AdminDep], responses=errors(401, 422, 503))
AccountId = Annotated[str, Path(pattern=ID_PATTERN)]
TO_ACCOUNT = {
    "account": link("get_account", account_id="$response.body#/account_id"),
    "payments": link("post_payment", account_id="$response.body#/account_id"),
    "outbox": link("sms_outbox", to="$response.body#/phone"),
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountPublic,
    responses={201: {"links": TO_ACCOUNT}, **errors(400, 409, 413)},
)
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
        interest_start=body.interest_start,
    )
    accounts.upsert_account(session, record, actor="admin")
    return account_public(accounts.account_view(session, body.account_id, policy, clock), policy)


@router.get("/{account_id}", response_model=AccountPublic, responses=errors(404))
def get_account(account_id: AccountId, session: SessionDep, policy: PolicyDep, clock: ClockDep) -> AccountPublic:
    return account_public(accounts.account_view(session, account_id, policy, clock), policy)


@router.post(
    "/{account_id}/payments",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentPublic,
    responses={
        201: {"links": {"account": link("get_account", account_id="$response.body#/account/account_id")}},
        200: {"description": "this reference was already posted with the same amount: nothing new (created false)"},
        **errors(400, 404, 409, 413),
    },
)
def post_payment(
    account_id: AccountId,
    body: PaymentCreate,
    session: SessionDep,
    policy: PolicyDep,
    clock: ClockDep,
    response: Response,
) -> PaymentPublic:
    """Post a repayment once per `reference`. The same reference and amount again: 200, created false;
    another amount: 409 payment_conflict. `paid_at` after now, or before the current statement: 422."""
    entry, created = accounts.post_payment(
        session, account_id, to_fen(body.amount), body.paid_at, body.reference, policy, clock
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    view = account_public(accounts.account_view(session, account_id, policy, clock), policy)
    return PaymentPublic(
        reference=body.reference,
        amount=money(entry.amount),
        paid_on=entry.effective_date,
        created=created,
        account=view,
    )
