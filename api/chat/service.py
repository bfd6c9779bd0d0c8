"""ChatService: the chat parts put together, one per gateway process, reached by routes as `ChatDep`."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

import httpx
from fastapi import Depends
from prometheus_client import Counter
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from api.chat.access import SessionAccess
from api.chat.delivery import Delivery, LiveUpdates
from api.chat.rasa import RasaClient
from api.chat.replies import Reply, TurnResult
from api.chat.transcript import end_wait
from api.chat.turn import Turns
from api.hub import SESSIONS_TOPIC, Hub, conversation_topic
from ledger import conversations, handoff, sessions
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.policy import Policy, cached_policy
from settings import Settings

log = logging.getLogger("api.chat")
RETURNED_TO_BOT = Counter("gateway_returned_to_bot_total", "Conversations given back to the bot when it came back")
WAITS_TIMED_OUT = Counter("gateway_handoff_waits_timed_out_total", "Holders the bot took back after max_wait_minutes")


class ChatService:
    """The gateway's chat, one per process: it builds the parts (the Rasa client `rasa`, live
    updates and delivery, the turns, web session checks `access`) over one `db`, and does what
    needs more than one of them: an agent's reply stored then delivered, a session ended here and
    in every worker, conversations given back to the bot when it returns, holders whose wait for a
    person ran out. Routes reach it as `ChatDep`; a turn itself is `Turns`' (`api/chat/turn.py`)."""

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
        self.http = http
        self.hub = hub or Hub()
        self.db = db
        self.access = SessionAccess(
            self.db, settings.web_session_cache, idle=timedelta(minutes=settings.web_session_idle_minutes)
        )
        self.rasa = RasaClient(settings)
        self.live = LiveUpdates(self.hub)
        self.delivery = Delivery(settings, http, self.live, self.db)
        self.turns = Turns(
            self.db,
            self.rasa,
            self.live,
            clock or process_clock(settings.app_timezone),
            timedelta(minutes=settings.verify_idle_minutes),
            lambda: self.policy,
        )

    @property
    def clock(self) -> Clock:
        return self.turns.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:  # tests set "now"
        self.turns.clock = clock

    @property
    def policy(self) -> Policy:
        return cached_policy(str(self.settings.policy_path))

    async def authorised(self, conversation_id: str, token: str, activity: bool = False) -> bool:
        """Whether `token` is a live web session of exactly this conversation (not expired, ended or
        idle). `activity`: the holder is sending a message with it now."""
        return await self.access.allows(conversation_id, token, self.clock, activity)

    async def end_session(self, token: str) -> str | None:
        """The holder ends the session (结束对话): its token opens nothing from now on, here and in
        every worker; the page's socket closes. The conversation id, or None (not a live session)."""
        ended = await self.db.run(lambda s: sessions.end_session(s, token, self.clock))
        self.access.ended(token)
        if ended is not None:
            self.hub.publish(SESSIONS_TOPIC, {"type": "session_ended", "conversation_id": ended})
            self.hub.publish(conversation_topic(ended), {"type": "ended"})
        return ended

    async def forget_ended_sessions(self) -> None:
        """Until cancelled: forget the sessions other workers ended (their events come through the hub)."""
        queue = self.hub.subscribe(SESSIONS_TOPIC)
        try:
            while True:
                event = await queue.get()
                self.access.forget_conversation(str(event.get("conversation_id", "")))
        finally:
            self.hub.unsubscribe(SESSIONS_TOPIC, queue)

    def rasa_for(self, conversation_id: str) -> str:
        """The Rasa server this conversation is pinned to."""
        return self.rasa.server_for(conversation_id)

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
        return await self.turns.holder_message(conversation_id, text, channel, external_id, phone, channel_menu)

    async def seed(
        self, conversation_id: str, intent: str, entities: dict[str, str], channel: str = "web"
    ) -> TurnResult:
        """Start a conversation in context (an outbound contact) with Rasa's trigger_intent; replies stored."""
        return await self.turns.seed(conversation_id, intent, entities, channel)

    async def agent_says(self, conversation_id: str, agent: str, text: str) -> Reply:
        """An agent's reply: guarded like the bot's, stored, then delivered on the holder's channel."""
        reply, channel, phone = await self.turns.agent_message(conversation_id, agent, text, self.policy.contact)
        await self.delivery.agent_reply(conversation_id, channel, phone, reply)
        return reply

    async def aclose(self) -> None:
        """Close the connections to Rasa (the gateway stopping)."""
        await self.rasa.aclose()

    async def resume_bot(self, conversation_id: str) -> bool:
        """Un-pause the Rasa conversation after a person hands it back."""
        return await self.rasa.resume(conversation_id)

    async def messages_after(self, conversation_id: str, after: int) -> tuple[str, list[Reply]]:
        def read(session: Session) -> tuple[str, list[Reply]]:
            conv = conversations.find(session, conversation_id)
            if conv is None or conv.channel != "web":  # SMS conversations are not readable from the web
                return "bot", []
            rows = conversations.messages_after(session, conv, after, ("bot", "agent"))
            return conv.mode, [Reply(m.seq, m.text, m.buttons, m.sender) for m in rows]

        return await self.db.run(read, readonly=True)

    async def return_recovered(self) -> list[str]:
        """Give back to the bot the conversations it dropped while away and no agent took; which."""
        waiting = await self.db.run(handoff.waiting_for_the_bot, readonly=True)
        returned: list[str] = []
        answers: dict[str, bool] = {}
        for conversation_id in waiting:
            url = self.rasa.server_for(conversation_id)
            if url not in answers:
                answers[url] = await self.rasa.bot_answers(url)
            if not answers[url]:
                continue
            async with self.turns.locks.hold(conversation_id):  # not while one of its turns is under way

                def give_back(session: Session, cid: str = conversation_id) -> bool:
                    return handoff.return_to_bot(session, cid)

                if not await self.db.run(give_back):
                    continue  # an agent took it meanwhile: it stays with the agent
                await self.rasa.resume(conversation_id)
            returned.append(conversation_id)
            RETURNED_TO_BOT.inc()
            log.info("conversation returned to the bot", extra={"conversation_id": conversation_id})
            self.live.queue_changed(conversation_id)
        return returned

    async def end_long_waits(self) -> list[str]:
        """Holders parked longer than `handoff.max_wait_minutes` with nobody taking them: told so,
        offered a callback, and the bot resumes; the ticket stays in the queue for agents."""
        policy = self.policy
        clock = self.clock
        now = clock.now()
        overdue = await self.db.run(lambda s: handoff.overdue_waits(s, policy, now), readonly=True)
        ended: list[str] = []
        for conversation_id in overdue:
            async with self.turns.locks.hold(conversation_id):

                def tell(session: Session, cid: str = conversation_id) -> tuple[Reply, str, str | None] | None:
                    return end_wait(session, cid, policy, clock.now())

                told = await self.db.run(tell)
                if told is None:
                    continue
                reply, channel, phone = told
                await self.rasa.resume(conversation_id)
            ended.append(conversation_id)
            WAITS_TIMED_OUT.inc()
            log.info("handoff wait ran out; the bot resumes", extra={"conversation_id": conversation_id})
            self.live.mode_changed(conversation_id, "bot")
            self.live.queue_changed(conversation_id)
            try:
                await self.delivery.agent_reply(conversation_id, channel, phone, reply)
            except Exception:  # stored; the holder reads it with their next message or the page
                log.exception("telling a holder their wait ran out failed", extra={"conversation_id": conversation_id})
        return ended


def chat_service(conn: HTTPConnection) -> ChatService:
    """The process's ChatService, built in the app's lifespan (api/main.py)."""
    service: ChatService = conn.app.state.chat
    return service


async def _chat_dep(conn: HTTPConnection) -> ChatService:
    # async: FastAPI runs a plain function dependency in a worker thread, a hop on every request
    return chat_service(conn)


ChatDep = Annotated[ChatService, Depends(_chat_dep)]
