"""Outbound campaigns (admin) and the signed link that opens a conversation from an SMS."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.campaign_sender import check_template
from api.chat import chat_out
from api.deps import AdminDep, ClockDep, PolicyDep, SessionDep
from api.errors import ApiError
from api.limits import limiter, public_limit
from api.links import verify
from api.wechat_reminders import check_template as check_wechat
from ledger import campaigns, conversations
from ledger.clock import process_clock
from ledger.db import run_transaction
from ledger.models import Account, Campaign, ContactAttempt

router = APIRouter(tags=["campaigns"])


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    buckets: list[str] = []
    min_overdue_days: int | None = Field(default=None, ge=1)
    max_overdue_days: int | None = Field(default=None, ge=1)


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    segment: SegmentIn
    template: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    send_at: datetime | None = None
    channel: Literal["sms", "wechat"] = "sms"  # wechat: template messages to holders with a bound openid


@router.post("/v1/campaigns", status_code=status.HTTP_201_CREATED, dependencies=[AdminDep])
def create(body: CampaignCreate, session: SessionDep, policy: PolicyDep, clock: ClockDep) -> dict[str, Any]:
    problem = check_template(body.template, policy) if body.channel == "sms" else check_wechat(body.template, policy)
    if problem:
        raise ApiError(422, "template_not_allowed", problem, template=body.template)
    segment = campaigns.Segment(
        tuple(body.segment.buckets), body.segment.min_overdue_days, body.segment.max_overdue_days
    )
    result = campaigns.create_campaign(
        session, body.name, segment, body.template, body.send_at, policy.contact, clock, channel=body.channel
    )
    skipped = {key: result.skipped.get(key, 0) for key in campaigns.SKIP_KEYS}
    return {
        "campaign_id": result.campaign.campaign_id,
        "selected": result.selected,
        "queued": result.queued,
        "skipped": skipped,
    }


@router.get("/v1/campaigns/{campaign_id}", dependencies=[AdminDep])
def progress(campaign_id: str, session: SessionDep) -> dict[str, Any]:
    found = campaigns.campaign_status(session, campaign_id)
    campaign: Campaign = found["campaign"]  # type: ignore[assignment]
    by_status: dict[str, int] = found["by_status"]  # type: ignore[assignment]
    queued = by_status.get("queued", 0) + by_status.get("sending", 0)
    done = by_status.get("sent", 0) + by_status.get("failed", 0)
    return {
        "campaign_id": campaign.campaign_id,
        "name": campaign.name,
        "template": campaign.template,
        "send_at": campaign.send_at.isoformat(),
        "selected": campaign.selected,
        "progress": {
            "to_send": queued + done,
            "sent": by_status.get("sent", 0),
            "failed": by_status.get("failed", 0),
            "waiting": queued,
            "done": round(done / (queued + done), 3) if queued + done else 1.0,
        },
        "by_status": by_status,
        "by_reason": found["by_reason"],
    }


@router.get("/v1/chat/link")
@limiter.limit(public_limit)
async def open_link(request: Request, t: str = Query(max_length=200)) -> dict[str, Any]:
    """Open the conversation an SMS link points to: tied to the account's phone, greeted in context.
    Identity is still verified before any detail."""
    chat = request.app.state.chat
    settings = chat.settings
    attempt_id = verify(t, settings.link_signing_key.get_secret_value(), process_clock(settings.app_timezone).now())
    if attempt_id is None:
        raise ApiError(403, "link_invalid", "this link is not valid or has expired")

    def tie(session: Session) -> tuple[str, str, str, bool]:
        row = session.execute(
            select(ContactAttempt, Account, Campaign)
            .join(Account, Account.id == ContactAttempt.account_pk)
            .outerjoin(Campaign, Campaign.id == ContactAttempt.campaign_pk)
            .where(ContactAttempt.id == attempt_id)
        ).first()
        if row is None:
            raise ApiError(403, "link_invalid", "this link is not valid or has expired")
        attempt, account, campaign = row
        cid = f"lnk-{attempt.id}-{t.rsplit('.', 1)[-1][:10]}"
        conv = conversations.find(session, cid)
        fresh = conv is None
        if conv is None:
            conv = conversations.get_or_create(session, cid, "web")
            conversations.claim_phone(session, conv, account.cardholder.phone)
        return cid, account.account_id, campaign.campaign_id if campaign else "", fresh

    cid, account_id, campaign_id, fresh = await run_transaction(settings.database_url, tie)
    if not fresh:
        mode, replies = await chat.messages_after(cid, 0)
    else:
        result = await chat.seed(cid, "EXTERNAL_outbound_contact", {"account": account_id, "campaign": campaign_id})
        mode, replies = result.mode, result.replies
    return chat_out(cid, mode, replies).model_dump()
