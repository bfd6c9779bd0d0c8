"""The gateway's client for Rasa: which server a conversation talks to, and how long it waits.

Every call to Rasa (a turn, a conversation seeded in context, a resume after a person hands
back, a health look) goes through `_call`: one deadline (`RASA_TIMEOUT_SECONDS`) that counts
the wait for admission too, and at most `RASA_MAX_IN_FLIGHT` calls inside each server at once.
Rasa runs a turn's CPU work on one event loop: letting every waiting call in only interleaves
them, so under overload some would wait seconds behind later ones; a holding reply beats that.

The calls go over aiohttp rather than the httpx the gateway uses for providers: every turn
makes one, and on loopback aiohttp's client spends a fifth of httpx's time on a request
(0.10-0.14 ms against 0.54-0.69 ms, docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

import aiohttp

from settings import Settings, rasa_servers

ACTIONS_HEALTH_TIMEOUT = 1.0  # the action server's health look (not Rasa: no slot to wait for)
# An idle connection is dropped before Rasa's server (Sanic: 5 s) drops it: a turn then never
# starts on a connection the server is closing.
KEEPALIVE_SECONDS = 4.0


class RasaDown(Exception):
    """Rasa did not answer in time, or answered with an error; the message says how."""


class RasaClient:
    def __init__(self, settings: Settings) -> None:
        self.servers = rasa_servers(settings)
        self.timeout = settings.rasa_timeout_seconds
        self._slots = {url: asyncio.Semaphore(settings.rasa_max_in_flight) for url in self.servers}
        self._channel_headers = {"X-Channel-Secret": settings.rasa_channel_secret.get_secret_value()}
        self._token = {"token": settings.rasa_auth_token.get_secret_value()}
        self._actions_url = f"{settings.action_server_url}/health"
        self._actions_headers = {"X-Action-Secret": settings.action_server_secret.get_secret_value()}
        self._http: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session(self) -> aiohttp.ClientSession:
        """The connection pool, made in the running event loop (aiohttp's belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS)
            self._http, self._loop = aiohttp.ClientSession(connector=connector), loop
        return self._http

    async def aclose(self) -> None:
        """Close the pooled connections (the gateway stopping)."""
        if self._http is not None and self._loop is asyncio.get_running_loop():
            await self._http.close()
        self._http = None

    def server_for(self, conversation_id: str) -> str:
        """The Rasa server this conversation is pinned to: stable for its lifetime (Rasa's Redis lock
        store is only safe when one server handles a conversation)."""
        return self.servers[zlib.crc32(conversation_id.encode()) % len(self.servers)]

    async def _call(self, url: str, method: str, path: str, **kwargs: Any) -> Any:
        """One request to one Rasa server, admitted and timed by the one policy: its JSON answer
        (None for an empty body); RasaDown if it fails."""
        try:
            async with (
                asyncio.timeout(self.timeout),
                self._slots[url],  # admitted first: the request below starts only once in
                self._session().request(method, f"{url}{path}", **kwargs) as resp,
            ):
                resp.raise_for_status()
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RasaDown(type(exc).__name__) from exc
        try:
            return json.loads(body) if body else None
        except ValueError as exc:
            raise RasaDown(type(exc).__name__) from exc

    async def message(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """A holder's message through the gateway's channel: Rasa's answer (intent, messages)."""
        body = {"sender": conversation_id, "message": text, "metadata": metadata}
        answer = await self._call(
            self.server_for(conversation_id),
            "POST",
            "/webhooks/gateway/webhook",
            json=body,
            headers=self._channel_headers,
        )
        if not isinstance(answer, dict):
            raise RasaDown("not an object")
        return answer

    async def parse(self, conversation_id: str, text: str) -> dict[str, Any]:
        """What the NLU understands of `text` (intent, cues), without a turn in the conversation."""
        answer = await self._call(
            self.server_for(conversation_id), "POST", "/model/parse", params=self._token, json={"text": text}
        )
        if not isinstance(answer, dict):
            raise RasaDown("not an object")
        return answer

    async def trigger_intent(self, conversation_id: str, intent: str, entities: dict[str, str]) -> list[dict[str, Any]]:
        """Start a conversation in context with Rasa's trigger_intent; the bot's messages."""
        answer = await self._call(
            self.server_for(conversation_id),
            "POST",
            f"/conversations/{conversation_id}/trigger_intent",
            params=self._token,
            json={"name": intent, "entities": entities},
        )
        return list(answer.get("messages", [])) if isinstance(answer, dict) else []

    async def resume(self, conversation_id: str) -> bool:
        """Un-pause the conversation in Rasa, then listen: the next message starts a fresh turn."""
        try:
            await self._call(
                self.server_for(conversation_id),
                "POST",
                f"/conversations/{conversation_id}/tracker/events",
                params=self._token,
                json=[{"event": "resume"}, {"event": "action", "name": "action_listen"}],
            )
        except RasaDown:
            return False
        return True

    async def actions_answer(self) -> bool:
        """The action server answers its health check."""
        try:
            async with (
                asyncio.timeout(ACTIONS_HEALTH_TIMEOUT),
                self._session().get(self._actions_url, headers=self._actions_headers) as resp,
            ):
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def bot_answers(self, url: str) -> bool:
        """That Rasa server and the action server both answer their health checks."""
        try:
            await self._call(url, "GET", "/version")
        except RasaDown:
            return False
        return await self.actions_answer()
