"""Agents: requests from people not verified (stop contact, death, dispute, identity theft, wrong
number) and wrong-number reports that silence a number until someone has looked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import AgentDep
from api.deps import ClockDep, SessionDep
from ledger import conduct
from ledger.masking import mask
from ledger.models import Account

router = APIRouter(prefix="/v1/agent", tags=["conduct"])


class Review(BaseModel):
    keep: bool  # true: the number is not the holder's; false: lift it, contact may resume


@router.get("/contact-requests")
def contact_requests(agent: AgentDep, session: SessionDep) -> list[dict[str, Any]]:
    return [
        {
            "reference": r.reference,
            "kind": r.kind,
            "conversation_id": r.conversation_id,
            "channel": r.channel,
            "phone": mask(r.phone) if r.phone else None,
            "text": r.text,
            "created_at": r.created_at.isoformat(),
        }
        for r in conduct.open_requests(session)
    ]


@router.post("/contact-requests/{reference}/close")
def close_request(reference: str, agent: AgentDep, session: SessionDep) -> dict[str, str]:
    request = conduct.close_request(session, reference, agent)
    return {"reference": request.reference, "status": request.status}


@router.get("/suppressions")
def suppressions(agent: AgentDep, session: SessionDep) -> list[dict[str, Any]]:
    return [
        {
            "id": row.id,
            "phone": mask(row.phone),
            "channel": row.channel,
            "reason": row.reason,
            "account_id": _account_id(session, row.account_pk),
            "asked_by": mask(row.asked_by),
            "created_at": row.created_at.isoformat(),
        }
        for row in conduct.unreviewed_suppressions(session)
    ]


def _account_id(session: Any, account_pk: int | None) -> str | None:
    account = session.get(Account, account_pk) if account_pk is not None else None
    return account.account_id if account else None


@router.post("/suppressions/{suppression_id}/review")
def review(suppression_id: int, body: Review, agent: AgentDep, session: SessionDep, clock: ClockDep) -> dict[str, Any]:
    conduct.review_suppression(session, suppression_id, agent, body.keep, clock)
    return {"id": suppression_id, "active": body.keep, "reviewed_by": agent}
