"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slowapi.errors import RateLimitExceeded
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from api import errors
from api.campaign_sender import CampaignSender
from api.chat import ChatService
from api.hub import Hub
from api.limits import limiter
from api.logs import configure_logging
from api.routes import accounts, agents, campaigns, chat, health, kpis, live, pages, sms, transcripts
from ledger.policy import cached_policy
from ledger.settings import get_settings

MAX_BODY_BYTES = 64 * 1024


class BodyLimit(BaseHTTPMiddleware):
    """Refuse oversized bodies before they are read into memory."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse(
                errors.error_body("body_too_large", f"the body is over {MAX_BODY_BYTES} bytes"), status_code=413
            )
        return await call_next(request)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    configure_logging()
    cached_policy(str(settings.policy_path))  # a bad policy file stops start-up here, naming the line
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)) as http:
        app.state.http = http
        app.state.chat = ChatService(settings, http, Hub())
        stop = asyncio.Event()
        sender = asyncio.create_task(
            CampaignSender(settings, cached_policy(str(settings.policy_path)), http).run_forever(stop)
        )
        try:
            yield
        finally:
            stop.set()
            await sender


def create_app() -> FastAPI:
    app = FastAPI(title="Repayment assistant gateway", version="0.1.0", lifespan=lifespan)
    app.add_middleware(BodyLimit)
    app.state.limiter = limiter
    errors.install(app)

    @app.exception_handler(RateLimitExceeded)
    async def _too_many(_: Request, exc: RateLimitExceeded) -> JSONResponse:
        return JSONResponse(
            errors.error_body("rate_limited", "too many requests; please slow down", {"limit": str(exc.detail)}),
            status_code=429,
        )

    for module in (health, accounts, campaigns, kpis, chat, sms, transcripts, agents, live, pages):
        app.include_router(module.router)
    return app


app = create_app()
