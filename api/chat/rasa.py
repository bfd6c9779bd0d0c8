"""The gateway's client for Rasa: which server a conversation talks to, and how long it waits.

Every call to Rasa (a turn, a conversation seeded in context, a resume after a person hands
back, a health look) goes through `_call`: one deadline (`RASA_TIMEOUT_SECONDS`) that counts
the wait for admission too, and at most `RASA_MAX_IN_FLIGHT` calls inside each server at once.
Rasa runs a turn's CPU work on one event loop: letting every waiting call in only interleaves
them, so under overload some would wait seconds behind later ones; a holding reply beats that.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import httpx

from settings import Settings, rasa_servers

ACTIONS_HEALTH_TIMEOUT = 1.0  # the action server's health look (not Rasa: no slot to wait for)


class RasaDown(Exception):
    """Rasa did not answer in time, or answered with an error; the message says how."""


class RasaClient:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.http = http
        self.servers = rasa_servers(settings)
        self.timeout = settings.rasa_timeout_seconds
        self._slots = {url: asyncio.Semaphore(settings.rasa_max_in_flight) for url in self.servers}
        self._channel_headers = {"X-Channel-Secret": settings.rasa_channel_secret.get_secret_value()}
        self._token = {"token": settings.rasa_auth_token.get_secret_value()}
        self._actions_url = f"{settings.action_server_url}/health"
        self._actions_headers = {"X-Action-Secret": settings.action_server_secret.get_secret_value()}

    def server_for(self, conversation_id: str) -> str:
        """The Rasa server this conversation is pinned to: stable for its lifetime (Rasa's Redis lock
        store is only safe when one server handles a conversation)."""
        return self.servers[zlib.crc32(conversation_id.encode()) % len(self.servers)]

    async def _call(self, url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to one Rasa server, admitted and timed by the one policy; RasaDown if it fails."""
        try:
            async with asyncio.timeout(self.timeout), self._slots[url]:
                resp = await self.http.request(method, f"{url}{path}", timeout=self.timeout, **kwargs)
            resp.raise_for_status()
            return resp
        except (httpx.HTTPError, TimeoutError) as exc:
            raise RasaDown(type(exc).__name__) from exc

    @staticmethod
    def _json(resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise RasaDown(type(exc).__name__) from exc

    async def message(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """A holder's message through the gateway's channel: Rasa's answer (intent, messages)."""
        body = {"sender": conversation_id, "message": text, "metadata": metadata}
        resp = await self._call(
            self.server_for(conversation_id),
            "POST",
            "/webhooks/gateway/webhook",
            json=body,
            headers=self._channel_headers,
        )
        answer = self._json(resp)
        if not isinstance(answer, dict):
            raise RasaDown("not an object")
        return answer

    async def trigger_intent(self, conversation_id: str, intent: str, entities: dict[str, str]) -> list[dict[str, Any]]:
        """Start a conversation in context with Rasa's trigger_intent; the bot's messages."""
        resp = await self._call(
            self.server_for(conversation_id),
            "POST",
            f"/conversations/{conversation_id}/trigger_intent",
            params=self._token,
            json={"name": intent, "entities": entities},
        )
        answer = self._json(resp)
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
            resp = await self.http.get(self._actions_url, headers=self._actions_headers, timeout=ACTIONS_HEALTH_TIMEOUT)
            return resp.status_code == 200
        except httpx.HTTPError:
            return False

    async def bot_answers(self, url: str) -> bool:
        """That Rasa server and the action server both answer their health checks."""
        try:
            await self._call(url, "GET", "/version")
        except RasaDown:
            return False
        return await self.actions_answer()
