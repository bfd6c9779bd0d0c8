"""Outbound campaigns (admin). The signed link an SMS carries is redeemed by POST /v1/chat/sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.channels.sms.campaign import check_template
from api.channels.wechat.reminders import check_template as check_wechat
from api.deps import AdminDep, ClockDep, PolicyDep, SessionDep
from api.errors import ApiError
from api.schemas import ID_PATTERN, CampaignCreate, CampaignCreated, CampaignProgress, errors
from api.schemas.links import link
from ledger import campaigns
from ledger.models import Campaign

router = APIRouter(tags=["campaigns"], dependencies=[AdminDep], responses=errors(401, 422, 503))


@router.post(
    "/v1/campaigns",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignCreated,
    responses={
        201: {"links": {"progress": link("campaign_progress", campaign_id="$response.body#/campaign_id")}},
        **errors(400, 413),
    },
)
def create_campaign(body: CampaignCreate, session: SessionDep, policy: PolicyDep, clock: ClockDep) -> CampaignCreated:
    # A call speaks the channel's own opening (api/channels/voice): its template is the SMS one's name.
    check = check_wechat if body.channel == "wechat" else check_template
    problem = check(body.template, policy)
    if problem:
        raise ApiError(422, "template_not_allowed", problem, template=body.template)
    segment = campaigns.Segment(
        tuple(body.segment.buckets), body.segment.min_overdue_days, body.segment.max_overdue_days
    )
    result = campaigns.create_campaign(
        session, body.name, segment, body.template, body.send_at, policy.contact, clock, channel=body.channel
    )
    skipped = {key: result.skipped.get(key, 0) for key in campaigns.SKIP_KEYS}
    return CampaignCreated.model_validate(
        {
            "campaign_id": result.campaign.campaign_id,
            "selected": result.selected,
            "queued": result.queued,
            "skipped": skipped,
        }
    )


@router.get("/v1/campaigns/{campaign_id}", response_model=CampaignProgress, responses=errors(404))
def campaign_progress(campaign_id: Annotated[str, Path(pattern=ID_PATTERN)], session: SessionDep) -> CampaignProgress:
    found = campaigns.campaign_status(session, campaign_id)
    campaign: Campaign = found["campaign"]  # type: ignore[assignment]
    by_status: dict[str, int] = found["by_status"]  # type: ignore[assignment]
    queued = by_status.get("queued", 0) + by_status.get("sending", 0)
    done = by_status.get("sent", 0) + by_status.get("failed", 0)
    return CampaignProgress.model_validate(
        {
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
    )
