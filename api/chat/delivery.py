"""Delivery: what the pages following a conversation hear (the live hub), and an agent's reply
sent out on the holder's channel.

A web holder reads replies in the HTTP answer, the WebSocket or by polling, all from the store
and the hub; an SMS conversation's replies go out through the SMS provider (after the contact
decision); a WeChat conversation's through the customer-service message API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from api.chat.replies import Reply
from api.hub import QUEUE_TOPIC, Hub, conversation_topic
from api.sms import provider_for, send_sms
from api.wechat import deliver_to_conversation
from ledger.db import Database
from settings import Settings


class LiveUpdates:
    """Events for chat pages (their conversation's topic) and agent consoles (the queue)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def holder_wrote(self, conversation_id: str) -> None:
        self.hub.publish(conversation_topic(conversation_id), {"type": "message", "sender": "user"})

    def replied(self, conversation_id: str, replies: list[Reply]) -> None:
        topic = conversation_topic(conversation_id)
        for reply in replies:
            self.hub.publish(topic, {"type": "message", "seq": reply.seq, "sender": reply.sender, "text": reply.text})

    def queue_changed(self, conversation_id: str) -> None:
        self.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})

    def mode_changed(self, conversation_id: str, mode: str) -> None:
        self.hub.publish(conversation_topic(conversation_id), {"type": "mode", "mode": mode})

    def turn(self, conversation_id: str, mode: str, replies: list[Reply]) -> None:
        """A holder's message and what was said back; the queue hears of it when a person has it."""
        self.holder_wrote(conversation_id)
        self.replied(conversation_id, replies)
        if mode == "human":
            self.queue_changed(conversation_id)


# (conversation id, the holder's phone if any, text) -> sent on that channel
Sender = Callable[[str, str | None, str], Awaitable[None]]


class Delivery:
    """An agent's reply (already guarded and stored) to the holder, on the conversation's channel."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, live: LiveUpdates, db: Database) -> None:
        self.settings = settings
        self.http = http
        self.live = live
        self.db = db
        self._senders: dict[str, Sender] = {"sms": self._sms, "wechat": self._wechat}  # web: the pages read it

    async def agent_reply(self, conversation_id: str, channel: str, phone: str | None, reply: Reply) -> None:
        self.live.replied(conversation_id, [reply])
        sender = self._senders.get(channel)
        if sender is not None:
            await sender(conversation_id, phone, reply.text)

    async def _sms(self, conversation_id: str, phone: str | None, text: str) -> None:
        if phone:
            provider = provider_for(self.settings, self.http)
            await send_sms(provider, self.settings, phone, text, conversation_id, db=self.db)

    async def _wechat(self, conversation_id: str, phone: str | None, text: str) -> None:
        await deliver_to_conversation(self.settings, self.http, conversation_id, text, db=self.db)
