"""The turn: a holder's message stored, the bot asked (or a person left to answer), the replies
guarded, stored and handed back. If the bot is away: the holding reply once, and the human queue.

Each step runs inside the conversation's lock; what it writes is one transaction of
`api/chat/transcript.py`, run through `db.run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from api.chat import transcript
from api.chat.delivery import LiveUpdates
from api.chat.locks import KeyedLocks
from api.chat.rasa import RasaClient, RasaDown
from api.chat.replies import Reply, TurnResult
from api.chat.transcript import CALLBACK_BUTTON, BotAnswer, Inbound, InboundLost, Incoming, Outgoing, timeout_text
from ledger import duty, handoff, templates
from ledger.clock import Clock
from ledger.db import Database
from ledger.policy import Policy

log = logging.getLogger("api.chat")
HOLDING_REPLY = "抱歉，系统暂时繁忙。您的消息已记录，已为您转接人工客服，请稍候。"
SLOW_TURN_SECONDS = 1.0
DB_AWAY = (OperationalError, InterfaceError, PoolTimeout)  # the database is unreachable, not wrong
REPLY_STORE_PATIENCE = 10.0  # seconds to keep trying to store replies Rasa already gave

MESSAGES = Counter("gateway_messages_total", "Messages through the gateway", ["channel", "sender"])
TURN_SECONDS = Histogram("gateway_turn_seconds", "Inbound message to replies stored", ["channel"])
RASA_FAILURES = Counter("gateway_rasa_failures_total", "Turns where Rasa did not answer in time")

WITHDRAW_BUTTON = {"title": "不用人工了", "payload": "不用人工了"}  # plain text: the NLU reads it


def _log_if_slow(conversation_id: str, started: float, stored: float, answered: float, alongside: bool) -> None:
    """A turn slower than SLOW_TURN_SECONDS says where its time went."""
    done = time.perf_counter()
    if done - started > SLOW_TURN_SECONDS:
        log.warning(
            "slow turn",
            extra={
                "conversation_id": conversation_id,
                "store_ms": round((stored - started) * 1000),
                "rasa_ms": round((answered - (started if alongside else stored)) * 1000),
                "reply_ms": round((done - answered) * 1000),
            },
        )


class Turns:
    """How a message is answered; one per ChatService. A conversation's turns, an agent's message
    and its return to the bot take `locks` in turn, in arrival order."""

    def __init__(
        self,
        db: Database,
        rasa: RasaClient,
        live: LiveUpdates,
        clock: Clock,
        verify_idle: timedelta,
        policy: Callable[[], Policy],
    ) -> None:
        self.policy = policy
        self.db = db
        self.rasa = rasa
        self.live = live
        self.clock = clock
        self.verify_idle = verify_idle
        self.locks = KeyedLocks()

    async def holder_message(
        self,
        conversation_id: str,
        text: str,
        channel: str,
        external_id: str | None,
        phone: str | None,
        channel_menu: bool = False,
    ) -> TurnResult:
        """Store, ask the bot (or leave it to the person who has the conversation), store the replies."""
        incoming = Incoming(conversation_id, text, channel, external_id, phone, channel_menu)
        with TURN_SECONDS.labels(channel).time():
            async with self.locks.hold(conversation_id):
                return await self._take_turn(incoming)

    async def _take_turn(self, incoming: Incoming) -> TurnResult:
        """Store inbound; ask the bot (alongside the store when that is safe, else after it), or,
        when a person has the conversation, answer while the holder waits; store outbound."""
        cid, channel = incoming.conversation_id, incoming.channel
        started = time.perf_counter()
        readable, storing = self._store_inbound(incoming)
        await asyncio.wait((readable, storing), return_when=asyncio.FIRST_COMPLETED)
        alongside = readable.done()
        if alongside:
            inbound, answer = await self._ask_bot_while_storing(incoming, readable.result(), storing)
        else:
            inbound = storing.result()
            MESSAGES.labels(channel, "user").inc()
            waited = await self._answer_stored(incoming, inbound)
            if waited is None:  # a person has it: the message reaches the agent, the bot stays quiet
                self.live.turn(cid, "human", [])
                return TurnResult("human", [])
            answer = waited
        answered = time.perf_counter()
        result = await self._store_outbound(cid, inbound, answer, channel)
        _log_if_slow(cid, started, inbound.stored_at, answered, alongside)
        MESSAGES.labels(channel, "bot").inc(len(result.replies))
        self.live.turn(cid, result.mode, result.replies)
        return result

    def _store_inbound(self, incoming: Incoming) -> tuple[asyncio.Future[str], asyncio.Future[Inbound]]:
        """Store the holder's message (in the database's thread), started here. Two futures: what
        the bot may read, set as soon as it may read it before the store commits; and the message
        as stored."""
        idle, clock = self.verify_idle, self.clock
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[str] = loop.create_future()

        def let_the_bot_read(said: str) -> None:  # from the store's thread; a retried store calls it again
            def settle() -> None:
                if not readable.done():
                    readable.set_result(said)

            loop.call_soon_threadsafe(settle)

        def store(session: Session) -> Inbound:
            return transcript.store_inbound(session, incoming, clock, idle, let_the_bot_read)

        async def stored() -> Inbound:
            inbound = await self.db.run(store)
            return inbound._replace(stored_at=time.perf_counter())

        return readable, asyncio.ensure_future(stored())

    async def _ask_bot_while_storing(
        self, incoming: Incoming, said: str, storing: asyncio.Future[Inbound]
    ) -> tuple[Inbound, BotAnswer]:
        """The bot reads the message while its store finishes. The replies wait for the store too
        (they follow the message in the transcript), and a failed store fails the turn."""
        try:
            answer = await self._ask_bot(incoming.conversation_id, said, incoming.channel, incoming.channel_menu)
        finally:
            inbound = await storing
        MESSAGES.labels(incoming.channel, "user").inc()
        return inbound, answer

    async def _answer_stored(self, incoming: Incoming, inbound: Inbound) -> BotAnswer | None:
        """The bot's answer to the stored message; while the holder waits for a person, what they
        hear meanwhile. None when an agent has the conversation (the agent answers)."""
        cid, channel, menu = incoming.conversation_id, incoming.channel, incoming.channel_menu
        if inbound.mode == "human":
            return await self._while_waiting(cid, inbound.conv_pk, inbound.said, channel, menu)
        return await self._ask_bot(cid, inbound.said, channel, menu)

    async def _store_outbound(
        self, conversation_id: str, inbound: Inbound, answer: BotAnswer, channel: str
    ) -> TurnResult:
        """The replies guarded and stored after the holder's message. The message is stored and the
        bot has answered it: keep trying for REPLY_STORE_PATIENCE seconds rather than leave a turn
        without a reply (the gateway answers 503 after that). A retry first looks for the replies an
        earlier try may have committed before its connection was cut."""
        retry = False

        def store(session: Session) -> TurnResult:
            if retry:
                done = transcript.already_answered(session, conversation_id, inbound)
                if done is not None:
                    return done
            return transcript.store_answer(session, inbound, answer, channel)

        deadline = time.monotonic() + REPLY_STORE_PATIENCE
        while True:
            try:
                return await self.db.run(store)
            except DB_AWAY as exc:
                if isinstance(exc, InboundLost) or time.monotonic() > deadline:
                    raise
                retry = True
                await asyncio.sleep(0.5)

    async def _while_waiting(
        self, conversation_id: str, conv_pk: int, said: str, channel: str, channel_menu: bool
    ) -> BotAnswer | None:
        """A holder parked for a person is answered at once: a withdrawal gives the conversation
        back to the bot, what must be acted on now (stop contact, a third party, a death report) is
        acted on by the bot, anything else hears its place in the queue and the expected wait.
        None when an agent has the conversation (the agent answers)."""
        policy = self.policy()
        clock = self.clock

        def look(session: Session) -> handoff.Waiting | None:
            return handoff.waiting_of(session, conv_pk, policy, clock.now())

        waiting = await self.db.run(look, readonly=True)
        if waiting is None:
            return None
        if waiting.overdue:  # nobody took it in time: say so now, offer a callback, the bot resumes

            def ran_out(session: Session) -> bool:
                return handoff.time_out(session, conversation_id, policy, clock.now()) is not None

            if await self.db.run(ran_out):
                await self.rasa.resume(conversation_id)
                self.live.queue_changed(conversation_id)
                return BotAnswer({}, [(timeout_text(policy), [CALLBACK_BUTTON])], False)
        kind: duty.WaitingTurnKind = "status"
        parsed: dict[str, Any] = {}
        if waiting.reason != handoff.SERVICE_UNAVAILABLE:  # else the bot is away: it cannot act anyway
            try:
                parsed = await self.rasa.parse(conversation_id, said)
                intent = (parsed.get("intent") or {}).get("name")
                kind = duty.while_waiting(intent, frozenset(parsed.get("cues") or ()))
            except RasaDown as exc:
                log.warning("rasa parse unavailable", extra={"conversation_id": conversation_id, "reason": str(exc)})
        if kind == "withdraw":  # the bot's action ends the ticket and answers in context
            self.live.queue_changed(conversation_id)
        if kind != "status":
            await self.rasa.resume(conversation_id)  # a conversation paused by an older action listens again
            answer = await self._ask_bot(conversation_id, said, channel, channel_menu)
            if kind == "withdraw" or answer.failed:
                return answer
            still = await self.db.run(look, readonly=True)
            if still is None:
                return answer
            return answer._replace(outgoing=[*answer.outgoing, (self._waiting_text(still), [WITHDRAW_BUTTON])])
        intent_seen = (parsed.get("intent") or {}).get("name")
        seen = {"intent": intent_seen, "confidence": (parsed.get("intent") or {}).get("confidence")}
        # While the bot is away there is nothing to withdraw to: no button then.
        buttons = None if waiting.reason == handoff.SERVICE_UNAVAILABLE else [WITHDRAW_BUTTON]
        return BotAnswer(seen if intent_seen else {}, [(self._waiting_text(waiting), buttons)], False)

    @staticmethod
    def _waiting_text(waiting: handoff.Waiting) -> str:
        return templates.render(
            "chat",
            "handoff_waiting.j2",
            ahead=waiting.position - 1,
            wait=waiting.wait_minutes,
            bot_away=waiting.reason == handoff.SERVICE_UNAVAILABLE,
        )

    async def _ask_bot(self, conversation_id: str, text: str, channel: str, channel_menu: bool) -> BotAnswer:
        """Rasa's answer and what it says; on failure the holding reply (failed=True)."""
        # The gateway vouches for a channel menu's payload; Rasa unpacks nothing else unoffered.
        metadata: dict[str, Any] = {"channel": channel, "channel_menu": True} if channel_menu else {"channel": channel}
        try:
            answer = await self.rasa.message(conversation_id, text, metadata)
            outgoing = [(m.get("text") or "", m.get("buttons")) for m in answer.get("messages", []) if m.get("text")]
            # Every turn of this bot says something. Silence means an action failed inside Rasa
            # (the action server away or hung, or its database write cut off): Rasa logs it, drops
            # the action's events and answers nothing. The holder gets the holding reply instead.
            if not outgoing:
                up = await self.rasa.actions_answer()
                raise RasaDown("the bot said nothing" if up else "action server unavailable")
            return BotAnswer(answer, outgoing, False)
        except RasaDown as exc:
            RASA_FAILURES.inc()
            log.warning("rasa unavailable", extra={"conversation_id": conversation_id, "reason": str(exc)})
            return BotAnswer({}, [(HOLDING_REPLY, None)], True)

    async def seed(self, conversation_id: str, intent: str, entities: dict[str, str], channel: str) -> TurnResult:
        """Start a conversation in context (an outbound contact) with Rasa's trigger_intent; replies stored."""
        outgoing: Outgoing
        try:
            messages = await self.rasa.trigger_intent(conversation_id, intent, entities)
            outgoing = [(m.get("text") or "", m.get("buttons")) for m in messages]
            failed = False
        except RasaDown:
            outgoing, failed = [(HOLDING_REPLY, None)], True

        def store(session: Session) -> TurnResult:
            return transcript.store_seed(session, conversation_id, channel, intent, outgoing, failed)

        async with self.locks.hold(conversation_id):
            return await self.db.run(store)

    async def agent_message(
        self, conversation_id: str, agent: str, text: str, contact_rules: Any
    ) -> tuple[Reply, str, str | None]:
        """An agent's reply guarded like the bot's and stored; with the channel and phone to send it on.

        Refused (nothing stored) when the guard blocks it, the conversation is not the agent's,
        WeChat's 48-hour window is closed, or an SMS would break the contact rules.
        """
        clock = self.clock

        def store(session: Session) -> tuple[Reply, str, str | None]:
            return transcript.store_agent_message(session, conversation_id, agent, text, clock.now(), contact_rules)

        async with self.locks.hold(conversation_id):
            stored = await self.db.run(store)
        MESSAGES.labels(stored[1], "agent").inc()
        return stored
