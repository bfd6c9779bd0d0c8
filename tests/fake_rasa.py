"""Rasa and the action server stood in for over real HTTP, for gateway tests that need them to
answer, stay silent, hang or be away.

One aiohttp server on a free local port answers every path (Rasa's `/webhooks/...`,
`/conversations/...`, `/version`; the action server's `/health`) with what `answer(method, path,
body)` returns: `(status, json)`, or None to drop the connection unanswered, as a server that is
away. `answer` may be a coroutine function (a slow or hung server).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer

from api.chat import ChatService
from ledger.db import Database
from settings import Settings

Answer = tuple[int, Any] | None
Answering = Callable[[str, str, Any], Answer | Awaitable[Answer]]


def says(*texts: str, intent: str = "greet") -> tuple[int, Any]:
    """Rasa's answer to a turn: these messages."""
    return 200, {"intent": intent, "confidence": 0.9, "messages": [{"text": t} for t in texts]}


@asynccontextmanager
async def fake_rasa(answer: Answering) -> AsyncIterator[str]:
    """The stand-in, serving while the block runs; its base URL."""

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        result = answer(request.method, request.path, json.loads(raw) if raw else None)
        if inspect.isawaitable(result):
            result = await result
        if result is None:  # away: the connection closes with no answer
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        status, body = result
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@asynccontextmanager
async def chat_service(db: Database, answer: Answering, **settings: Any) -> AsyncIterator[ChatService]:
    """A ChatService over `db` whose Rasa and action server are the stand-in."""
    async with fake_rasa(answer) as url, httpx.AsyncClient() as http:
        config = Settings(database_url=db.url, rasa_url=url, action_server_url=url, **settings)
        service = ChatService(config, http, db=db)
        try:
            yield service
        finally:
            await service.aclose()
