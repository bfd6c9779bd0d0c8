"""Outbound campaigns (admin). The signed link an SMS carries is redeemed by POST /v1/chat/sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.campaign_sender import check_template
from api.deps import AdminDep, ClockDep, PolicyDep, SessionDep
from api.errors import ApiError
from api.wechat_reminders import check_template as check_wechat
from ledger import campaigns
from ledger.models import Campaign

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
