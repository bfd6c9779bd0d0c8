"""A message's way through the gateway (ARCHITECTURE.md): store, route, guard, store, deliver."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import unicodedata
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from api import guard
from api.errors import ApiError
from api.hub import QUEUE_TOPIC, Hub, conversation_topic
from api.schemas import Button, ChatMessage, ChatOut
from ledger import compliance, conduct, conversations, handoff
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.masking import mask, mask_values
from ledger.models import Conversation, Message
from ledger.policy import Policy, cached_policy
from settings import Settings, rasa_servers

log = logging.getLogger("api.chat")
T = TypeVar("T")
# The shape of a button payload; whether one may pass is decided per conversation (offered_payloads).
BUTTON_PAYLOAD = re.compile(r"^/[a-z_]{2,40}$")
SLOW_TURN_SECONDS = 1.0
HOLDING_REPLY = "抱歉，系统暂时繁忙。您的消息已记录，已为您转接人工客服，请稍候。"

MESSAGES = Counter("gateway_messages_total", "Messages through the gateway", ["channel", "sender"])
TURN_SECONDS = Histogram("gateway_turn_seconds", "Inbound message to replies stored", ["channel"])
RASA_FAILURES = Counter("gateway_rasa_failures_total", "Turns where Rasa did not answer in time")
RETURNED_TO_BOT = Counter("gateway_returned_to_bot_total", "Conversations given back to the bot when it came back")
DB_AWAY = (OperationalError, InterfaceError, PoolTimeout)  # the database is unreachable, not wrong
RECOVERY_INTERVAL = 5.0  # seconds between looks for conversations the bot can take back
REPLY_STORE_PATIENCE = 10.0  # seconds to keep trying to store replies Rasa already gave


class BadInput(ValueError):
    """Text that cannot be accepted; the message says why."""


def _command_char(ch: str) -> bool:
    """Characters that vanish, or become "/", on the way to Rasa's RegexMessageHandler."""
    return ch.isspace() or unicodedata.category(ch) == "Cf" or unicodedata.normalize("NFKC", ch) == "/"


def clean_text(raw: str, limit: int) -> str:
    """Reject what cannot be a message; keep everything else exactly (emoji, traditional, SQL-looking text).

    Text that would read as a command once normalised (zero-width characters, a full-width
    slash) loses its leading slashes unless it has exactly a button payload's shape; whether
    that payload may pass is decided by the conversation (only what the bot offered there).
    """
    text = "".join(ch for ch in raw if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")).strip()
    if not text:
        raise BadInput("the message is empty")
    if len(text) > limit:
        raise BadInput(f"the message is longer than {limit} characters")
    probe = "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf").strip()
    if probe.startswith("/"):
        if BUTTON_PAYLOAD.match(probe):
            return probe
        rest = text
        while rest and _command_char(rest[0]):
            rest = rest[1:]
        text = rest or text.replace("/", "").replace("\uff0f", "") or "?"
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


class WrongChannel(Exception):
    """The conversation belongs to another channel (an SMS conversation addressed from the web)."""


class DuplicateMessage(Exception):
    """The provider sent this message before (same external id): it was processed once already."""


def store_bot_replies(
    session: Session, conv: Conversation, outgoing: list[tuple[str, Any]], channel: str
) -> list[Reply]:
    """Guard each reply (replacing what may not be said), store it, and return it as sent."""
    verified = conv.verified_at is not None
    names = conduct.holder_names(session, conv.claimed_phone, conv.account_pk) if not verified else []
    messages = []
    for reply_text, buttons in outgoing:
        verdict = guard.check(reply_text, verified, names=names)
        if verdict.blocked:
            log.warning(
                "guard replaced a reply", extra={"conversation_id": conv.conversation_id, "reason": verdict.blocked}
            )
        kept = [{"title": b["title"], "payload": b["payload"]} for b in buttons or []] or None
        messages.append(Message(sender="bot", channel=channel, text=verdict.text, buttons=kept))
    return [Reply(m.seq, m.text, m.buttons) for m in conversations.append_messages(session, conv, messages)]


def chat_out(conversation_id: str, mode: str, replies: list[Reply]) -> ChatOut:
    """The chat API's response shape, for HTTP turns, reads after a seq, WebSocket turns and links."""
    return ChatOut(
        conversation_id=conversation_id,
        mode=mode,
        messages=[
            ChatMessage(
                seq=r.seq,
                text=r.text,
                sender=r.sender,
                buttons=[Button(**b) for b in r.buttons] if r.buttons else None,
            )
            for r in replies
        ],
    )


class ChatService:
    """One per process: owns the HTTP client to Rasa and the per-conversation ordering locks."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        hub: Hub | None = None,
        clock: Clock | None = None,
        *,
        db: Database,
    ) -> None:
        self.settings = settings
        self.db = db
        self.http = http
        self.hub = hub or Hub()
        self.clock = clock or process_clock(settings.app_timezone)
        self._rasa = rasa_servers(settings)
        # At most this many turns inside each Rasa server at once; the rest wait here, in order.
        # Rasa runs a turn's CPU work on one event loop: letting every waiting turn in only
        # interleaves them, so under overload some wait seconds behind later ones.
        self._slots = {url: asyncio.Semaphore(settings.rasa_max_in_flight) for url in self._rasa}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def policy(self) -> Policy:
        return cached_policy(str(self.settings.policy_path))

    def rasa_for(self, conversation_id: str) -> str:
        """The Rasa server this conversation is pinned to: stable for its lifetime (Rasa's Redis lock
        store is only safe when one server handles a conversation)."""
        return self._rasa[zlib.crc32(conversation_id.encode()) % len(self._rasa)]

    def _lock(self, conversation_id: str) -> asyncio.Lock:
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[conversation_id] = lock
        return lock

    async def _db(self, work: Callable[[Session], T], readonly: bool = False) -> T:
        return await self.db.run(work, readonly=readonly)

    async def _ask_rasa(
        self, conversation_id: str, text: str, channel: str, channel_menu: bool = False
    ) -> dict[str, Any]:
        url = self.rasa_for(conversation_id)
        # The gateway vouches for a channel menu's payload (see handle); Rasa unpacks nothing else unoffered.
        metadata: dict[str, Any] = {"channel": channel, "channel_menu": True} if channel_menu else {"channel": channel}
        try:
            # The wait for a free slot counts against the same deadline: a holding reply beats silence.
            async with asyncio.timeout(self.settings.rasa_timeout_seconds), self._slots[url]:
                resp = await self.http.post(
                    f"{url}/webhooks/gateway/webhook",
                    json={"sender": conversation_id, "message": text, "metadata": metadata},
                    headers={"X-Channel-Secret": self.settings.rasa_channel_secret.get_secret_value()},
                )
            resp.raise_for_status()
            return resp.json()  # type: ignore[no-any-return]
        except (httpx.HTTPError, ValueError, TimeoutError) as exc:
            raise RasaDown(type(exc).__name__) from exc

    async def handle(
        self,
        conversation_id: str,
        text: str,
        channel: str = "web",
        external_id: str | None = None,
        phone: str | None = None,
        channel_menu: bool = False,
    ) -> TurnResult:
        """Process one inbound message in order with the others of its conversation.

        `phone` ties the conversation to a sender's registered number (SMS); identity is still
        verified before any detail. A repeated `external_id` raises DuplicateMessage.
        `channel_menu`: `text` is the payload of the channel's own signed menu (a WeChat CLICK
        key the gateway mapped), not typed text, so it may reach Rasa as an intent.
        """
        with TURN_SECONDS.labels(channel).time():
            async with self._lock(conversation_id):
                return await self._handle(conversation_id, text, channel, external_id, phone, channel_menu)

    async def _handle(
        self,
        conversation_id: str,
        text: str,
        channel: str,
        external_id: str | None,
        phone: str | None,
        channel_menu: bool = False,
    ) -> TurnResult:
        idle = timedelta(minutes=self.settings.verify_idle_minutes)

        def store_inbound(session: Session) -> tuple[int, int, str, str]:
            duplicate = select(Message.id).where(Message.channel == channel, Message.external_id == external_id)
            if external_id and session.scalar(duplicate):
                raise DuplicateMessage(external_id)
            conv = conversations.get_or_create(session, conversation_id, channel)
            if conv.channel != channel:  # never let one channel speak, or listen, for another
                raise WrongChannel(conversation_id)
            if phone and conv.claimed_phone is None:
                conversations.claim_phone(session, conv, phone)
            conversations.note_holder_message(session, conv, self.clock, idle)
            said = text
            offered = channel_menu or said in conversations.offered_payloads(session, conv)
            if said.startswith("/") and not offered:
                said = said.lstrip("/")  # a payload nobody offered here is typed text, never an intent
            try:
                msg = conversations.append_message(
                    session, conv, "user", said, channel=channel, external_id=external_id
                )
            except IntegrityError:  # the same provider message raced in from a retry
                raise DuplicateMessage(external_id or "") from None
            return conv.id, msg.id, conv.mode, said

        started = time.perf_counter()
        conv_pk, msg_pk, mode, text = await self._db(store_inbound)
        stored = time.perf_counter()
        MESSAGES.labels(channel, "user").inc()
        if mode == "human":  # a person has it: the message reaches the agent, the bot stays quiet
            self.hub.publish(conversation_topic(conversation_id), {"type": "message", "sender": "user"})
            self.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})
            return TurnResult("human", [])
        try:
            answer = await self._ask_rasa(conversation_id, text, channel, channel_menu)
            outgoing = [(m.get("text") or "", m.get("buttons")) for m in answer.get("messages", []) if m.get("text")]
            failed = False
            # Every turn of this bot says something. Silence means an action failed inside Rasa
            # (the action server away or hung, or its database write cut off): Rasa logs it, drops
            # the action's events and answers nothing. The holder gets the holding reply instead.
            if not outgoing:
                up = await self._actions_answer()
                raise RasaDown("the bot said nothing" if up else "action server unavailable")
        except RasaDown as exc:
            RASA_FAILURES.inc()
            log.warning("rasa unavailable", extra={"conversation_id": conversation_id, "reason": str(exc)})
            answer, outgoing, failed = {}, [(HOLDING_REPLY, None)], True

        retry = False

        def store_outbound(session: Session) -> TurnResult:
            conv = session.get(Conversation, conv_pk)
            assert conv is not None
            if retry:  # an earlier try may have committed before its connection was cut
                done = self._replies_after(session, conv, msg_pk)
                if done is not None:
                    return TurnResult(conv.mode, done)
            if answer.get("intent"):
                values: dict[str, Any] = {"intent": answer.get("intent"), "confidence": answer.get("confidence")}
                answers = [str(v) for v in answer.get("secret_values") or []]
                if answers:  # bare verification answers ("2345 6002") the NLU recognised: masked too
                    values["text"] = mask_values(mask(text), answers)
                session.execute(update(Message).where(Message.id == msg_pk).values(**values))
            if failed:
                conversations.open_ticket(session, conv, handoff.SERVICE_UNAVAILABLE, 1, mask(text)[:200])
            return TurnResult(conv.mode, store_bot_replies(session, conv, outgoing, channel))

        answered = time.perf_counter()
        # The holder's message is stored and Rasa has answered it: keep trying to store the answer
        # for a while rather than leave a turn without a reply (the gateway answers 503 after that).
        deadline = time.monotonic() + REPLY_STORE_PATIENCE
        while True:
            try:
                result = await self._db(store_outbound)
                break
            except DB_AWAY:
                if time.monotonic() > deadline:
                    raise
                retry = True
                await asyncio.sleep(0.5)
        done = time.perf_counter()
        if done - started > SLOW_TURN_SECONDS:  # say where the time went
            log.warning(
                "slow turn",
                extra={
                    "conversation_id": conversation_id,
                    "store_ms": round((stored - started) * 1000),
                    "rasa_ms": round((answered - stored) * 1000),
                    "reply_ms": round((done - answered) * 1000),
                },
            )
        MESSAGES.labels(channel, "bot").inc(len(result.replies))
        topic = conversation_topic(conversation_id)
        self.hub.publish(topic, {"type": "message", "sender": "user"})
        for reply in result.replies:
            self.hub.publish(topic, {"type": "message", "seq": reply.seq, "sender": "bot", "text": reply.text})
        if result.mode == "human":
            self.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})
        return result

    async def _actions_answer(self) -> bool:
        try:
            resp = await self.http.get(
                f"{self.settings.action_server_url}/health",
                headers={"X-Action-Secret": self.settings.action_server_secret.get_secret_value()},
                timeout=1.0,
            )
            return resp.status_code == 200
        except httpx.HTTPError:
            return False

    async def _bot_answers(self, rasa_url: str) -> bool:
        """That Rasa server and the action server both answer their health checks."""
        try:
            resp = await self.http.get(f"{rasa_url}/version", timeout=2.0)
            rasa_ok = resp.status_code == 200
        except httpx.HTTPError:
            rasa_ok = False
        return rasa_ok and await self._actions_answer()

    @staticmethod
    def _replies_after(session: Session, conv: Conversation, msg_pk: int) -> list[Reply] | None:
        """The bot replies already stored after the holder's message, or None if there are none."""
        seq = session.scalar(select(Message.seq).where(Message.id == msg_pk))
        rows = session.scalars(
            select(Message)
            .where(Message.conversation_pk == conv.id, Message.seq > (seq or 0), Message.sender == "bot")
            .order_by(Message.seq)
        ).all()
        return [Reply(m.seq, m.text, m.buttons) for m in rows] or None

    async def return_recovered(self) -> list[str]:
        """Give back to the bot the conversations it dropped while away and no agent took; which."""
        waiting = await self._db(handoff.waiting_for_the_bot, readonly=True)
        returned: list[str] = []
        answers: dict[str, bool] = {}
        for conversation_id in waiting:
            url = self.rasa_for(conversation_id)
            if url not in answers:
                answers[url] = await self._bot_answers(url)
            if not answers[url]:
                continue
            async with self._lock(conversation_id):  # not while one of its turns is under way

                def give_back(session: Session, cid: str = conversation_id) -> bool:
                    return handoff.return_to_bot(session, cid)

                if not await self._db(give_back):
                    continue  # an agent took it meanwhile: it stays with the agent
                await self.resume_bot(conversation_id)
            returned.append(conversation_id)
            RETURNED_TO_BOT.inc()
            log.info("conversation returned to the bot", extra={"conversation_id": conversation_id})
            self.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})
        return returned

    async def recover_forever(self, stop: asyncio.Event, interval: float = RECOVERY_INTERVAL) -> None:
        """Every few seconds, return_recovered(); a failing look (the database away) is tried again."""
        while not stop.is_set():
            try:
                await self.return_recovered()
            except DB_AWAY as exc:  # the database is away too: look again at the next tick
                log.warning("returning conversations to the bot: database unavailable (%s)", type(exc).__name__)
            except Exception:  # keep looking; the next tick tries again
                log.exception("returning conversations to the bot failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def agent_says(self, conversation_id: str, agent: str, text: str) -> Reply:
        """An agent's reply: guarded like the bot's, stored, then delivered on the holder's channel."""
        from ledger.handoff import require_claimed_by

        def store(session: Session) -> tuple[Reply, str, str | None]:
            conv = require_claimed_by(session, conversation_id, agent)
            if conv.channel == "wechat":  # outside WeChat's 48-hour window nothing may be sent: say so, store nothing
                from ledger.wechat import require_service_window

                require_service_window(session, conversation_id, self.clock.now())
            verified = conv.verified_at is not None
            names = conduct.holder_names(session, conv.claimed_phone, conv.account_pk) if not verified else []
            verdict = guard.check(text, verified, names=names)
            if verdict.blocked:  # nothing stored or sent: the agent reads why and writes it again
                log.warning(
                    "guard refused an agent message",
                    extra={"conversation_id": conversation_id, "reason": verdict.blocked},
                )
                raise ApiError(422, "message_blocked", verdict.why or verdict.blocked, reason=verdict.blocked)
            if conv.channel == "sms" and conv.claimed_phone:
                # An SMS from an agent is an outbound contact unless it answers the person's own message.
                now = self.clock.now()
                decision = compliance.decide_contact(
                    session,
                    phone=conv.claimed_phone,
                    account_pk=conv.account_pk,
                    channel="sms",
                    purpose="agent",
                    at=now,
                    rules=self.policy.contact,
                    last_inbound_at=conduct.last_message_from_person(session, conv.id),
                )
                if decision.outcome != "send":
                    raise compliance.ContactNotAllowed.because(decision)
                compliance.record_contact(
                    session,
                    phone=conv.claimed_phone,
                    account_pk=conv.account_pk,
                    channel="sms",
                    purpose="agent",
                    decision=decision,
                    at=now,
                )
            msg = conversations.append_message(session, conv, "agent", text)
            return Reply(msg.seq, msg.text, None, "agent"), conv.channel, conv.claimed_phone

        async with self._lock(conversation_id):
            reply, channel, phone = await self._db(store)
        MESSAGES.labels(channel, "agent").inc()
        self.hub.publish(
            conversation_topic(conversation_id),
            {"type": "message", "seq": reply.seq, "sender": "agent", "text": reply.text},
        )
        if channel == "sms" and phone:
            from api.sms import provider_for, send_sms

            await send_sms(
                provider_for(self.settings, self.http), self.settings, phone, reply.text, conversation_id, db=self.db
            )
        elif channel == "wechat":
            from api.wechat import deliver_to_conversation

            await deliver_to_conversation(self.settings, self.http, conversation_id, reply.text, db=self.db)
        return reply

    async def seed(
        self, conversation_id: str, intent: str, entities: dict[str, str], channel: str = "web"
    ) -> TurnResult:
        """Start a conversation in context (an outbound contact) with Rasa's trigger_intent; replies stored."""
        token = self.settings.rasa_auth_token.get_secret_value()
        outgoing: list[tuple[str, list[dict[str, str]] | None]]
        try:
            resp = await self.http.post(
                f"{self.rasa_for(conversation_id)}/conversations/{conversation_id}/trigger_intent",
                params={"token": token},
                json={"name": intent, "entities": entities},
                timeout=self.settings.rasa_timeout_seconds,
            )
            resp.raise_for_status()
            outgoing = [(m.get("text") or "", m.get("buttons")) for m in resp.json().get("messages", [])]
            failed = False
        except (httpx.HTTPError, ValueError):
            outgoing, failed = [(HOLDING_REPLY, None)], True

        def store(session: Session) -> TurnResult:
            conv = conversations.get_or_create(session, conversation_id, channel)
            if failed:  # like a failed turn: the holding reply once, and a person until the bot is back
                if conv.mode == "human":
                    return TurnResult("human", [])
                conversations.open_ticket(session, conv, handoff.SERVICE_UNAVAILABLE, 1, intent)
            return TurnResult(conv.mode, store_bot_replies(session, conv, outgoing, channel))

        async with self._lock(conversation_id):
            return await self._db(store)

    async def resume_bot(self, conversation_id: str) -> bool:
        """Un-pause the Rasa conversation after a person hands it back."""
        token = self.settings.rasa_auth_token.get_secret_value()
        try:
            resp = await self.http.post(
                f"{self.rasa_for(conversation_id)}/conversations/{conversation_id}/tracker/events",
                params={"token": token},
                # Resume, then listen: the next message then starts a fresh turn that rules can match.
                json=[{"event": "resume"}, {"event": "action", "name": "action_listen"}],
                timeout=5,
            )
            return resp.status_code == 200
        except httpx.HTTPError:
            return False

    async def messages_after(self, conversation_id: str, after: int) -> tuple[str, list[Reply]]:
        def read(session: Session) -> tuple[str, list[Reply]]:
            conv = conversations.find(session, conversation_id)
            if conv is None or conv.channel != "web":  # SMS conversations are not readable from the web
                return "bot", []
            rows = conversations.messages_after(session, conv, after, ("bot", "agent"))
            return conv.mode, [Reply(m.seq, m.text, m.buttons, m.sender) for m in rows]

        return await self._db(read, readonly=True)
