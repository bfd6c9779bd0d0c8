"""The turn: a holder's message stored, the bot asked (or a person left to answer), the replies
guarded, stored and handed back. If the bot is away: the holding reply once, and the human queue.

Each function here runs inside the conversation's lock (ChatService); the database is reached
only through `db.run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from prometheus_client import Counter, Histogram
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from api import guard
from api.chat.delivery import LiveUpdates
from api.chat.locks import KeyedLocks
from api.chat.rasa import RasaClient, RasaDown
from api.chat.replies import Reply, TurnResult
from ledger import compliance, conduct, conversations, duty, handoff, templates
from ledger.clock import Clock
from ledger.db import Database
from ledger.errors import DuplicateMessage, MessageBlocked, NoProvenPhone
from ledger.masking import mask, mask_values
from ledger.models import Conversation
from ledger.policy import Policy

log = logging.getLogger("api.chat")
HOLDING_REPLY = "抱歉，系统暂时繁忙。您的消息已记录，已为您转接人工客服，请稍候。"
SLOW_TURN_SECONDS = 1.0
DB_AWAY = (OperationalError, InterfaceError, PoolTimeout)  # the database is unreachable, not wrong
REPLY_STORE_PATIENCE = 10.0  # seconds to keep trying to store replies Rasa already gave

MESSAGES = Counter("gateway_messages_total", "Messages through the gateway", ["channel", "sender"])
TURN_SECONDS = Histogram("gateway_turn_seconds", "Inbound message to replies stored", ["channel"])
RASA_FAILURES = Counter("gateway_rasa_failures_total", "Turns where Rasa did not answer in time")

Outgoing = list[tuple[str, Any]]  # (text, buttons) as the bot said them
WITHDRAW_BUTTON = {"title": "不用人工了", "payload": "不用人工了"}  # plain text: the NLU reads it
CALLBACK_BUTTON = {"title": "预约回电", "payload": "预约回电"}  # likewise


def timeout_text(policy: Policy) -> str:
    return templates.render("chat", "handoff_timeout.j2", max_wait=policy.handoff.max_wait_minutes)


def end_wait(
    session: Session, conversation_id: str, policy: Policy, now: datetime
) -> tuple[Reply, str, str | None] | None:
    """The holder waited `max_wait_minutes` for nobody: the bot takes them back (the ticket stays
    for agents) and says so, offering a callback. The notice as stored, its channel and phone; None
    when the holder no longer waits (taken or withdrawn meanwhile)."""
    if handoff.time_out(session, conversation_id, policy, now) is None:
        return None
    conv = conversations.find(session, conversation_id)
    assert conv is not None
    msg = conversations.append_message(session, conv, "bot", timeout_text(policy), buttons=[CALLBACK_BUTTON])
    return Reply(msg.seq, msg.text, msg.buttons), conv.channel, conv.claimed_phone


class InboundLost(OperationalError):
    """The database crashed after the holder's message was stored and before its replies were:
    the message did not reach the disk (`store_holder_message(durable=False)`). Nothing was said to the
    holder yet; like the database being away, the gateway answers 503 and the sender retries."""

    def __init__(self, conversation_id: str) -> None:
        lost = RuntimeError(f"the holder's message in {conversation_id} was lost in a database crash")
        super().__init__(None, None, lost)


def store_bot_replies(session: Session, conv: Conversation, outgoing: Outgoing, channel: str) -> list[Reply]:
    """Guard each reply (replacing what may not be said), store it, and return it as sent."""
    session.flush()  # what this session changed in `conv` (its mode, its verification) is in the row
    return _store_replies(session, conversations.reserve_replies(session, conv.id, len(outgoing)), outgoing, channel)


def _store_replies(session: Session, slots: conversations.ReplySlots, outgoing: Outgoing, channel: str) -> list[Reply]:
    """Guard each reply for the conversation as `slots` found it, store them in its seqs."""
    names = [] if slots.verified else conduct.holder_names(session, slots.claimed_phone, slots.account_pk)
    guarded = []
    for reply_text, buttons in outgoing:
        verdict = guard.check(reply_text, slots.verified, names=names)
        if verdict.blocked:
            log.warning(
                "guard replaced a reply", extra={"conversation_id": slots.conversation_id, "reason": verdict.blocked}
            )
        kept = [{"title": b["title"], "payload": b["payload"]} for b in buttons or []] or None
        guarded.append((verdict.text, kept))
    return [Reply(*stored) for stored in conversations.store_replies(session, slots, "bot", channel, guarded)]


def _replies_after(session: Session, conv_pk: int, seq: int) -> list[Reply] | None:
    """The bot replies already stored after the holder's message (at `seq`), or None if there are none."""
    return [Reply(m.seq, m.text, m.buttons) for m in conversations.bot_replies_after(session, conv_pk, seq)] or None


class Inbound(NamedTuple):
    """The holder's message as stored: its conversation and row, who had the conversation, what the
    bot may read of it, and when the store finished (`time.perf_counter()`)."""

    conv_pk: int
    msg_pk: int
    mode: str
    said: str
    stored_at: float


class BotAnswer(NamedTuple):
    """What the bot made of a message (intent, confidence...), what it says, and whether it failed
    (the holding reply then)."""

    parsed: dict[str, Any]
    outgoing: Outgoing
    failed: bool


def _nlu_note(inbound: Inbound, answer: BotAnswer) -> tuple[int, dict[str, Any]] | None:
    """What the NLU understood of the holder's message, to note on its row; None if nothing."""
    parsed = answer.parsed
    if not parsed.get("intent"):
        return None
    values: dict[str, Any] = {"intent": parsed.get("intent"), "confidence": parsed.get("confidence")}
    answers = [str(v) for v in parsed.get("secret_values") or []]
    if answers:  # bare verification answers ("2345 6002") the NLU recognised: masked too
        values["text"] = mask_values(mask(inbound.said), answers)
    return inbound.msg_pk, values


def _store_answer(session: Session, inbound: Inbound, answer: BotAnswer, channel: str) -> TurnResult:
    """The bot's replies guarded and stored after the holder's message; when the bot failed, a
    person is asked for as well."""
    if answer.failed:
        conv = session.get(Conversation, inbound.conv_pk)
        assert conv is not None
        conversations.open_ticket(session, conv, handoff.SERVICE_UNAVAILABLE, 1, mask(inbound.said)[:200])
    # One statement reserves the replies' seqs and reads what the guard needs (on PostgreSQL it
    # also notes what the NLU understood of the holder's message).
    slots = conversations.reserve_replies(
        session, inbound.conv_pk, len(answer.outgoing), note=_nlu_note(inbound, answer)
    )
    return TurnResult(slots.mode, _store_replies(session, slots, answer.outgoing, channel))


def _already_answered(session: Session, conversation_id: str, inbound: Inbound) -> TurnResult | None:
    """The replies an earlier try stored after the holder's message, if it committed; raises
    InboundLost when the message itself is gone (a database crash)."""
    seq = conversations.message_seq(session, inbound.msg_pk)
    if seq is None:
        raise InboundLost(conversation_id)
    done = _replies_after(session, inbound.conv_pk, seq)
    if done is None:
        return None
    return TurnResult(conversations.mode_of(session, inbound.conv_pk) or "bot", done)


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


def _check_agent_message(session: Session, conv: Conversation, text: str, now: datetime, contact_rules: Any) -> None:
    """Whether an agent's message may go to the holder; raises why not (nothing stored or sent):
    WeChat's 48-hour window closed, the guard refusing it, or an SMS without a proven number or
    against the contact rules. An SMS that may go is recorded as a contact."""
    if conv.channel == "wechat":  # outside WeChat's 48-hour window nothing may be sent
        from ledger.wechat import require_service_window

        require_service_window(session, conv.conversation_id, now)
    verified = conv.verified_at is not None
    names = conduct.holder_names(session, conv.claimed_phone, conv.account_pk) if not verified else []
    verdict = guard.check(text, verified, names=names)
    if verdict.blocked:  # the agent reads why and writes it again
        log.warning(
            "guard refused an agent message", extra={"conversation_id": conv.conversation_id, "reason": verdict.blocked}
        )
        raise MessageBlocked(verdict.why or verdict.blocked, reason=verdict.blocked)
    if conv.channel != "sms":
        return
    if not (conv.claimed_phone and conv.phone_proven):
        # An SMS goes only to the number the conversation came from, never to one typed in it.
        raise NoProvenPhone("这个对话没有来自其渠道的号码，不能发送短信")
    _record_agent_sms(session, conv, conv.claimed_phone, now, contact_rules)


def _record_agent_sms(session: Session, conv: Conversation, phone: str, now: datetime, contact_rules: Any) -> None:
    """An SMS from an agent is an outbound contact: a reply window spares it the caps, never the
    quiet hours or the holder's own time windows (ledger/compliance.py)."""
    decision = compliance.decide_contact(
        session,
        phone=phone,
        account_pk=conv.account_pk,
        channel="sms",
        purpose="agent",
        at=now,
        rules=contact_rules,
        last_inbound_at=conduct.last_message_from_person(session, conv.id),
    )
    if decision.outcome != "send":
        raise compliance.ContactNotAllowed.because(decision)
    compliance.record_contact(
        session, phone=phone, account_pk=conv.account_pk, channel="sms", purpose="agent", decision=decision, at=now
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
        with TURN_SECONDS.labels(channel).time():
            async with self.locks.hold(conversation_id):
                return await self._holder_message(conversation_id, text, channel, external_id, phone, channel_menu)

    async def _holder_message(
        self,
        conversation_id: str,
        text: str,
        channel: str,
        external_id: str | None,
        phone: str | None,
        channel_menu: bool,
    ) -> TurnResult:
        started = time.perf_counter()
        readable, storing = self._store_inbound(conversation_id, text, channel, external_id, phone, channel_menu)
        await asyncio.wait((readable, storing), return_when=asyncio.FIRST_COMPLETED)
        alongside = readable.done()
        if alongside:
            inbound, answer = await self._ask_bot_while_storing(
                conversation_id, readable.result(), storing, channel, channel_menu
            )
        else:
            inbound = storing.result()
            MESSAGES.labels(channel, "user").inc()
            waited = await self._answer_stored(conversation_id, inbound, channel, channel_menu)
            if waited is None:  # a person has it: the message reaches the agent, the bot stays quiet
                self.live.turn(conversation_id, "human", [])
                return TurnResult("human", [])
            answer = waited
        answered = time.perf_counter()
        result = await self._store_outbound(conversation_id, inbound, answer, channel)
        _log_if_slow(conversation_id, started, inbound.stored_at, answered, alongside)
        MESSAGES.labels(channel, "bot").inc(len(result.replies))
        self.live.turn(conversation_id, result.mode, result.replies)
        return result

    def _store_inbound(
        self,
        conversation_id: str,
        text: str,
        channel: str,
        external_id: str | None,
        phone: str | None,
        channel_menu: bool,
    ) -> tuple[asyncio.Future[str], asyncio.Future[Inbound]]:
        """Store the holder's message (in the database's thread), started here. Two futures: what the bot
        may read, set as soon as the bot may read it before the store commits; and the message as
        stored."""
        idle = self.verify_idle
        clock = self.clock
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[str] = loop.create_future()

        def let_the_bot_read(said: str) -> None:  # from the store's thread; a retried store calls it again
            def settle() -> None:
                if not readable.done():
                    readable.set_result(said)

            loop.call_soon_threadsafe(settle)

        def store(session: Session) -> tuple[int, int, str, str]:
            arrival = conversations.arrive(
                session,
                conversation_id,
                text,
                channel,
                external_id=external_id,
                phone=phone,
                channel_menu=channel_menu,
            )
            conv = arrival.conv
            state = conversations.TurnState(conv.channel, conv.mode, conv.verified_at, conv.last_holder_at)
            # Storing the message from here on changes nothing the bot's actions read (the
            # conversation row and its phone are committed, no verification lapses): the bot reads
            # it while this transaction finishes. Not for a provider's message, whose id must be
            # known unique first.
            if (
                arrival.known
                and not arrival.claimed
                and not external_id
                and conversations.bot_may_read_first(state, channel, clock.now(), idle)
            ):
                let_the_bot_read(arrival.said)
            try:
                msg_pk = conversations.store_holder_message(
                    session,
                    conv,
                    arrival.said,
                    clock,
                    idle,
                    channel=channel,
                    external_id=external_id,
                    durable=conv.mode == "human",  # else the replies' commit follows before the holder hears back
                )
            except IntegrityError:  # the same provider message raced in from a retry
                raise DuplicateMessage("this message was processed already", external_id=external_id) from None
            return conv.id, msg_pk, conv.mode, arrival.said

        async def stored() -> Inbound:
            conv_pk, msg_pk, mode, said = await self.db.run(store)
            return Inbound(conv_pk, msg_pk, mode, said, time.perf_counter())

        return readable, asyncio.ensure_future(stored())

    async def _ask_bot_while_storing(
        self, conversation_id: str, said: str, storing: asyncio.Future[Inbound], channel: str, channel_menu: bool
    ) -> tuple[Inbound, BotAnswer]:
        """The bot reads the message while its store finishes. The replies wait for the store too
        (they follow the message in the transcript), and a failed store fails the turn."""
        try:
            answer = await self._ask_bot(conversation_id, said, channel, channel_menu)
        finally:
            inbound = await storing
        MESSAGES.labels(channel, "user").inc()
        return inbound, answer

    async def _answer_stored(
        self, conversation_id: str, inbound: Inbound, channel: str, channel_menu: bool
    ) -> BotAnswer | None:
        """The bot's answer to the stored message; while the holder waits for a person, what they
        hear meanwhile. None when an agent has the conversation (the agent answers)."""
        if inbound.mode == "human":
            return await self._while_waiting(conversation_id, inbound.conv_pk, inbound.said, channel, channel_menu)
        return await self._ask_bot(conversation_id, inbound.said, channel, channel_menu)

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
                done = _already_answered(session, conversation_id, inbound)
                if done is not None:
                    return done
            return _store_answer(session, inbound, answer, channel)

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
            conv = conversations.get_or_create(session, conversation_id, channel)
            if failed:  # like a failed turn: the holding reply once, and a person until the bot is back
                if conv.mode == "human":
                    return TurnResult("human", [])
                conversations.open_ticket(session, conv, handoff.SERVICE_UNAVAILABLE, 1, intent)
            return TurnResult(conv.mode, store_bot_replies(session, conv, outgoing, channel))

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
            conv = handoff.require_claimed_by(session, conversation_id, agent)
            _check_agent_message(session, conv, text, clock.now(), contact_rules)
            msg = conversations.append_message(session, conv, "agent", text)
            return Reply(msg.seq, msg.text, None, "agent"), conv.channel, conv.claimed_phone

        async with self.locks.hold(conversation_id):
            stored = await self.db.run(store)
        MESSAGES.labels(stored[1], "agent").inc()
        return stored
