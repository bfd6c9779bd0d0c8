"""Agents: requests from people not verified (stop contact, death, dispute, identity theft, wrong
number) and wrong-number reports that silence a number until someone has looked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.auth import AgentDep
from api.deps import ClockDep, SessionDep
from api.schemas import ContactRequestOut, RequestClosed, Review, Reviewed, SuppressionOut, errors
from api.schemas.links import link
from ledger import conduct
from ledger.masking import mask
from ledger.models import Account

router = APIRouter(prefix="/v1/agent", tags=["conduct"], responses=errors(401, 422, 503))


@router.get(
    "/contact-requests",
    response_model=list[ContactRequestOut],
    responses={200: {"links": {"close": link("close_request", reference="$response.body#/0/reference")}}},
)
def contact_requests(agent: AgentDep, session: SessionDep) -> list[ContactRequestOut]:
    return [
        ContactRequestOut(
            reference=r.reference,
            kind=r.kind,
            conversation_id=r.conversation_id,
            channel=r.channel,
            phone=mask(r.phone) if r.phone else None,
            text=r.text,
            created_at=r.created_at.isoformat(),
        )
        for r in conduct.open_requests(session)
    ]


@router.post("/contact-requests/{reference}/close", response_model=RequestClosed, responses=errors(404))
def close_request(
    reference: Annotated[str, Path(min_length=1, max_length=64)], agent: AgentDep, session: SessionDep
) -> RequestClosed:
    request = conduct.close_request(session, reference, agent)
    return RequestClosed.model_validate({"reference": request.reference, "status": request.status})


@router.get(
    "/suppressions",
    response_model=list[SuppressionOut],
    responses={200: {"links": {"review": link("review_suppression", suppression_id="$response.body#/0/id")}}},
)
def suppressions(agent: AgentDep, session: SessionDep) -> list[SuppressionOut]:
    return [
        SuppressionOut(
            id=row.id,
            phone=mask(row.phone),
            channel=row.channel,
            reason=row.reason,
            account_id=_account_id(session, row.account_pk),
            asked_by=mask(row.asked_by),
            created_at=row.created_at.isoformat(),
        )
        for row in conduct.unreviewed_suppressions(session)
    ]


def _account_id(session: Any, account_pk: int | None) -> str | None:
    account = session.get(Account, account_pk) if account_pk is not None else None
    return account.account_id if account else None


@router.post("/suppressions/{suppression_id}/review", response_model=Reviewed, responses=errors(400, 404, 413))
def review_suppression(
    suppression_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: Review,
    agent: AgentDep,
    session: SessionDep,
    clock: ClockDep,
) -> Reviewed:
    conduct.review_suppression(session, suppression_id, agent, body.keep, clock)
    return Reviewed(id=suppression_id, active=body.keep, reviewed_by=agent)
