"""GET /v1/kpis: the collection KPIs (docs/operations.md) for a period."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, ClockDep, PolicyDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.schemas import Kpis, errors
from api.schemas.common import DateIn
from ledger.kpis import kpis

router = APIRouter(tags=["kpis"])


@router.get("/v1/kpis", dependencies=[AdminDep], response_model=Kpis, responses=errors(401, 422, 503))
def get_kpis(
    session: SessionDep,
    policy: PolicyDep,
    clock: ClockDep,
    settings: SettingsDep,
    start: Annotated[DateIn | None, Query(alias="from", description="inclusive; default: 30 days before `to`")] = None,
    end: Annotated[DateIn | None, Query(alias="to", description="exclusive; default: tomorrow")] = None,
) -> Kpis:
    """`from` inclusive, `to` exclusive, dates in APP_TIMEZONE; by default the last 30 days up to today.
    `from` must be before `to`, at most 366 days apart (422 validation_failed)."""
    end = end or clock.today() + timedelta(days=1)
    start = start or end - timedelta(days=30)
    if start >= end:
        raise ApiError(422, "validation_failed", "`from` must be before `to`")
    if (end - start).days > 366:
        raise ApiError(422, "validation_failed", "at most a year at a time")
    return Kpis.model_validate(kpis(session, start, end, policy, settings.app_timezone))
