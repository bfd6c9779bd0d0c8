"""A message's way through the gateway (ARCHITECTURE.md): store, route, guard, store, deliver."""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
import weakref
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session

from api import guard
from ledger import conversations
from ledger.db import transaction
from ledger.masking import mask
from ledger.models import Conversation
from ledger.settings import Settings

log = logging.getLogger("api.chat")
BUTTON_PAYLOAD = re.compile(r"^/[a-z_]{2,40}$")
ALLOWED_PAYLOAD_INTENTS = {
    "ask_debt_amount",
    "ask_repayment_method",
    "request_installment",
    "request_human",
    "affirm",
    "deny",
    "request_deferment",
    "promise_to_pay",
    "ask_plan_terms",
}
HOLDING_REPLY = "抱歉，系统暂时繁忙。您的消息已记录，已为您转接人工客服，请稍候。"

MESSAGES = Counter("gateway_messages_total", "Messages through the gateway", ["channel", "sender"])
TURN_SECONDS = Histogram("gateway_turn_seconds", "Inbound message to replies stored", ["channel"])
RASA_FAILURES = Counter("gateway_rasa_failures_total", "Turns where Rasa did not answer in time")


class BadInput(ValueError):
    """Text that cannot be accepted; the message says why."""


def clean_text(raw: str, limit: int) -> str:
    """Reject what cannot be a message; keep everything else exactly (emoji, traditional, SQL-looking text)."""
    text = "".join(ch for ch in raw if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")).strip()
    if not text:
        raise BadInput("the message is empty")
    if len(text) > limit:
        raise BadInput(f"the message is longer than {limit} characters")
    if text.startswith("/") and not (BUTTON_PAYLOAD.match(text) and text[1:] in ALLOWED_PAYLOAD_INTENTS):
        text = text.lstrip("/") or text  # typed text, not a button: never an intent injection
    return text


@dataclass
class Reply:
    seq: int
    text: str
    buttons: list[dict[str, str]] | None
    sender: str = "bot"


@dataclass
class TurnResult:
    mode: str
    replies: list[Reply]


class RasaDown(Exception):
    pass


class ChatService:
    """One per process: owns the HTTP client to Rasa and the per-conversation ordering locks."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, conversation_id: str) -> asyncio.Lock:
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[conversation_id] = lock
        return lock

    async def _db(self, work: Any) -> Any:
        url = self.settings.database_url

        def run() -> Any:
            with transaction(url) as session:
                return work(session)

        return await asyncio.to_thread(run)

    async def _ask_rasa(self, conversation_id: str, text: str, channel: str) -> dict[str, Any]:
        try:
            resp = await self.http.post(
                f"{self.settings.rasa_url}/webhooks/gateway/webhook",
                json={"sender": conversation_id, "message": text, "metadata": {"channel": channel}},
                timeout=self.settings.rasa_timeout_seconds,
            )
            resp.raise_for_status()
            return resp.json()  # type: ignore[no-any-return]
        except (httpx.HTTPError, ValueError) as exc:
            raise RasaDown(type(exc).__name__) from exc

    async def handle(
        self, conversation_id: str, text: str, channel: str = "web", external_id: str | None = None
    ) -> TurnResult:
        """Process one inbound message in order with the others of its conversation."""
        with TURN_SECONDS.labels(channel).time():
            async with self._lock(conversation_id):
                return await self._handle(conversation_id, text, channel, external_id)

    async def _handle(self, conversation_id: str, text: str, channel: str, external_id: str | None) -> TurnResult:
        def store_inbound(session: Session) -> tuple[int, int, str]:
            conv = conversations.get_or_create(session, conversation_id, channel)
            msg = conversations.append_message(session, conv, "user", text, channel=channel, external_id=external_id)
            return conv.id, msg.id, conv.mode

        conv_pk, msg_pk, mode = await self._db(store_inbound)
        MESSAGES.labels(channel, "user").inc()
        if mode == "human":
            return TurnResult("human", [])
        try:
            answer = await self._ask_rasa(conversation_id, text, channel)
            outgoing = [(m.get("text") or "", m.get("buttons")) for m in answer.get("messages", []) if m.get("text")]
            failed = False
        except RasaDown as exc:
            RASA_FAILURES.inc()
            log.warning("rasa unavailable", extra={"conversation_id": conversation_id, "reason": str(exc)})
            answer, outgoing, failed = {}, [(HOLDING_REPLY, None)], True

        def store_outbound(session: Session) -> TurnResult:
            from ledger.models import Message

            conv = session.get(Conversation, conv_pk)
            assert conv is not None
            user_msg = session.get(Message, msg_pk)
            if user_msg is not None and answer.get("intent"):
                user_msg.intent, user_msg.confidence = answer.get("intent"), answer.get("confidence")
            if failed:
                conversations.open_ticket(session, conv, "service_unavailable", 1, mask(text)[:200])
            verified = conv.verified_at is not None
            replies = []
            for reply_text, buttons in outgoing:
                verdict = guard.check(reply_text, verified)
                if verdict.blocked:
                    log.warning(
                        "guard replaced a reply", extra={"conversation_id": conversation_id, "reason": verdict.blocked}
                    )
                kept_buttons = [{"title": b["title"], "payload": b["payload"]} for b in buttons or []] or None
                stored = conversations.append_message(
                    session, conv, "bot", verdict.text, channel=channel, buttons=kept_buttons
                )
                replies.append(Reply(stored.seq, stored.text, kept_buttons))
            return TurnResult(conv.mode, replies)

        result: TurnResult = await self._db(store_outbound)
        MESSAGES.labels(channel, "bot").inc(len(result.replies))
        return result

    async def messages_after(self, conversation_id: str, after: int) -> tuple[str, list[Reply]]:
        def read(session: Session) -> tuple[str, list[Reply]]:
            conv = conversations.find(session, conversation_id)
            if conv is None:
                return "bot", []
            rows = conversations.messages_after(session, conv, after, ("bot", "agent"))
            return conv.mode, [Reply(m.seq, m.text, m.buttons, m.sender) for m in rows]

        return await self._db(read)  # type: ignore[no-any-return]
