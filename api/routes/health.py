"""Health of every part, and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import DatabaseDep, SettingsDep
from api.schemas import Health
from settings import rasa_servers

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Health)
async def healthz(request: Request, settings: SettingsDep, database: DatabaseDep) -> Health:
    """Always 200: "degraded" names the parts that do not answer."""
    client = request.app.state.http

    async def check(url: str, headers: dict[str, str] | None = None) -> str:
        try:
            resp = await client.get(url, timeout=2.0, headers=headers)
            return "ok" if resp.status_code == 200 else f"http {resp.status_code}"
        except Exception as exc:  # any failure means "down"; the reason is shown, not raised
            return f"down: {type(exc).__name__}"

    async def db() -> str:
        try:
            await database.run(lambda s: s.execute(text("SELECT 1")), readonly=True)
            return "ok"
        except Exception as exc:
            return f"down: {type(exc).__name__}"

    servers = rasa_servers(settings)
    db_state, actions, *rasa_states = await asyncio.gather(
        db(),
        check(
            f"{settings.action_server_url}/health",
            {"X-Action-Secret": settings.action_server_secret.get_secret_value()},
        ),
        *(check(f"{url}/version") for url in servers),
    )
    down = [f"{url}: {state}" for url, state in zip(servers, rasa_states, strict=True) if state != "ok"]
    rasa = "ok" if not down else "; ".join(down)
    checks = {"db": db_state, "rasa": rasa, "actions": actions}
    return Health.model_validate(
        {"status": "ok" if all(v == "ok" for v in checks.values()) else "degraded", "checks": checks}
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
