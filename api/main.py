"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from slowapi.errors import RateLimitExceeded
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.channels import voice
from api.channels.sms import routes as sms
from api.channels.web import routes as web
from api.channels.wechat import routes as wechat
from api.channels.wechat.channel import WeChatChannel
from api.chat import ChatService
from api.hub import Hub, RedisHub
from api.limits import limiter
from api.logs import configure_logging
from api.routes import accounts, agents, campaigns, conduct, health, kpis, live, pages, transcripts
from jobs import eod, long_waits
from jobs import recovery as recovery_job
from jobs.campaign_sender import CampaignSender
from jobs.voice_dialer import VoiceDialer
from ledger.agents import prepare_login
from ledger.db import Database
from ledger.policy import cached_policy
from settings import get_settings

MAX_BODY_BYTES = 64 * 1024
# Routes that take more (a batch of accounts to import: api/routes/accounts.py).
LARGER_BODIES = {"/v1/accounts:batch": 8 * 1024 * 1024}


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse oversized bodies: by Content-Length before anything is read, and a body sent
    without one (chunked) as soon as it passes the limit.

    Plain ASGI rather than BaseHTTPMiddleware, which runs every request in an extra task with
    memory streams: a measurable share of the gateway's CPU per turn (docs/performance.md).
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = LARGER_BODIES.get(scope["path"], self.limit)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        received, started, too_large = 0, False, False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if too_large:  # the app's answer to a body cut short (a parse error) is not the truth
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with suppress(_TooLarge):
            await self.app(scope, counted_receive, watched_send)
        if too_large and not started:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        body = errors.error_body("body_too_large", f"the body is over {limit} bytes")
        await JSONResponse(body, status_code=413)(scope, receive, send)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    configure_logging()
    policy = cached_policy(str(settings.policy_path))  # a bad policy file stops start-up here, naming the line
    await asyncio.to_thread(prepare_login)  # every failed login then costs the same (ledger/agents.py)
    given: Database | None = app.state.db  # a test's database, which the test disposes
    db = given or Database(settings.database_url)
    app.state.db = db
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)) as http:
        app.state.http = http
        hub = RedisHub(settings.redis_url) if settings.redis_url else Hub()
        await hub.start()
        app.state.chat = ChatService(settings, http, hub, db=db)
        app.state.wechat = WeChatChannel(app.state.chat)
        wechat_backlog = asyncio.create_task(app.state.wechat.recover())  # pushes a stopped gateway left
        stop = asyncio.Event()
        sender = asyncio.create_task(CampaignSender(settings, policy, http, db=db).run_forever(stop))
        dialer = asyncio.create_task(VoiceDialer(settings, policy, http, db=db).run_forever(stop))  # voice campaigns
        # End-of-day: plans and promises moved on once a day, broken-plan notices within the rules.
        eod_task = asyncio.create_task(eod.run_forever(settings, policy, http, stop, db=db))
        # Conversations the bot dropped while it was away go back to it once it answers again.
        recovery = asyncio.create_task(
            recovery_job.run_forever(app.state.chat, stop, settings.bot_recovery_seconds)
            if settings.bot_recovery_seconds > 0
            else stop.wait()
        )
        # Web sessions a holder ended through another worker are forgotten here too.
        session_ends = asyncio.create_task(app.state.chat.forget_ended_sessions())
        # Holders parked for a person longer than handoff.max_wait_minutes: told, and the bot resumes.
        waits = asyncio.create_task(long_waits.run_forever(app.state.chat, stop))
        try:
            yield
        finally:
            stop.set()
            waits.cancel()
            wechat_backlog.cancel()
            session_ends.cancel()
            with suppress(asyncio.CancelledError):
                await session_ends
            await sender
            await dialer
            await eod_task
            await recovery
            await app.state.chat.aclose()
            await hub.stop()
            app.state.db = given
            if given is None:
                db.dispose()


def create_app(db: Database | None = None) -> FastAPI:
    """The gateway. Its lifespan builds the process's Database from DATABASE_URL, or uses `db`
    (a test's) and leaves disposing it to the caller."""
    app = FastAPI(
        title="Repayment assistant gateway",
        version="0.1.0",
        lifespan=lifespan,
        # Operation ids are the route functions' names: short, stable, and what links name.
        generate_unique_id_function=lambda route: route.name,
        # FastAPI's own /docs and /redoc load their scripts from a CDN: off. /docs is served from
        # files on this machine instead, when there are any (api/routes/pages.py).
        docs_url=None,
        redoc_url=None,
    )
    app.state.db = db
    app.add_middleware(BodyLimit)
    app.state.limiter = limiter
    errors.install(app)

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette names only the methods of the first route whose path matched; a path served by
        # several routes (GET and POST of /v1/chat/{id}/messages) must list them all (RFC 9110).
        allowed = set((exc.headers or {}).get("Allow", "").replace(" ", "").split(",")) - {""}
        for template, item in app.openapi()["paths"].items():
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), request.url.path):
                allowed |= {method.upper() for method in item}
        return JSONResponse(
            errors.error_body("method_not_allowed", "Method Not Allowed"),
            status_code=405,
            headers={"Allow": ", ".join(sorted(allowed))},
        )

    @app.exception_handler(RateLimitExceeded)
    async def _too_many(_: Request, exc: RateLimitExceeded) -> JSONResponse:
        return JSONResponse(
            errors.error_body("rate_limited", "too many requests; please slow down", {"limit": str(exc.detail)}),
            status_code=429,
        )

    for module in (health, accounts, campaigns, kpis, web, sms, wechat, transcripts, agents, conduct, live, pages):
        app.include_router(module.router)
    app.include_router(voice.router)
    return app


app = create_app()
