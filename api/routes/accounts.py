"""Admin: import accounts, read the account view, post payments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from sqlalchemy.orm import Session

from api.account_batch import check_row, json_array_rows, jsonl_rows, record_of
from api.deps import AdminDep, ClockDep, DatabaseDep, PolicyDep, SessionDep
from api.schemas import (
    ID_PATTERN,
    AccountBatchPublic,
    AccountCreate,
    AccountPublic,
    ErrorBody,
    PaymentCreate,
    PaymentPublic,
    errors,
    money,
    to_fen,
)
from api.schemas.links import link
from api.views import account_public
from ledger import accounts
from ledger.account_import import BookImport
from ledger.errors import ValidationFailed

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
    record = record_of(body)  # the same reading as each row of a batch
    accounts.upsert_account(session, record, actor="admin")
    return account_public(accounts.account_view(session, body.account_id, policy, clock), policy)


BATCH_MAX_BYTES = 8 * 1024 * 1024  # about 25,000 accounts; a bigger book: scripts/import_accounts.py
BATCH_CHUNK = 5000
JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
BATCH_BODY = {
    "required": True,
    "description": "the accounts as POST /v1/accounts takes them: a JSON array, or JSON lines (one per line)",
    "content": {
        "application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/AccountCreate"}, "minItems": 1}
        },
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}


@router.post(
    ":batch",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountBatchPublic,
    openapi_extra={"requestBody": BATCH_BODY},
    responses={
        422: {
            "model": ErrorBody,
            "description": "batch_rejected: details.rejected lists the rejected rows ({line, reason, field}, the "
            "first 1,000; details.rejected_count counts them all) and nothing was imported; or validation_failed",
        },
        **errors(400, 413),
    },
)
async def import_accounts(request: Request, db: DatabaseDep, clock: ClockDep) -> AccountBatchPublic:
    """Import many accounts in one transaction, all or nothing: each row checked as POST /v1/accounts
    checks one (and an account_id given twice is refused); any rejected row and nothing is imported
    (422 batch_rejected, with every rejected row's line and reason). An account already in the book is
    re-imported as POST /v1/accounts re-imports it: its statement replaced, never added to; a new
    statement while a plan or promise runs is a rejected row. Up to 8 MiB of body."""
    body = await request.body()
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    # A list, not a generator: `db.run` runs `work` again if the connection was cut before COMMIT.
    rows = list(jsonl_rows(body.splitlines()) if kind in JSON_LINES else json_array_rows(body))

    def work(session: Session) -> AccountBatchPublic:
        book = BookImport(session, clock.now(), actor="admin")
        for start in range(0, len(rows), BATCH_CHUNK):
            book.add([check_row(line, raw) for line, raw in rows[start : start + BATCH_CHUNK]])
        if book.report.rows == 0:
            raise ValidationFailed("the batch has no rows", field="body")
        report = book.finish()
        return AccountBatchPublic(rows=report.rows, created=report.created, updated=report.updated)

    return await db.run(work)


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
