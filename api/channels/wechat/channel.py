"""What a WeChat push does: find the follower's conversation, run the turn, send the replies.

Runs after the callback has answered WeChat (a retry comes after 5 s); one push at a time per
follower, in arrival order. Text (and recognised voice) goes to the bot like web chat; other
messages and events get fixed answers here; replies go out through the customer-service API.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from api.channels.base import Channel
from api.channels.seed import seed_from_link, signed_attempt
from api.channels.wechat.provider import Push, deliver
from api.chat import (
    BUTTON_PAYLOAD,
    BadInput,
    ChatService,
    DuplicateMessage,
    Reply,
    TurnResult,
    clean_text,
    store_bot_replies,
)
from api.chat.locks import KeyedLocks
from ledger import conversations, outreach, wechat
from ledger.clock import Clock, process_clock
from ledger.models import Message
from ledger.outreach import Contact

log = logging.getLogger("api.wechat")

UNBIND_WORDS = {"解绑", "解除绑定", "取消绑定"}
# Menu CLICK keys (set when the bank creates its menu) -> the bot's own buttons.
MENU = {
    "ask_debt_amount": "/ask_debt_amount",
    "request_installment": "/request_installment",
    "request_human": "/request_human",
}
PLACEHOLDERS = {"voice": "[语音]", "image": "[图片]", "video": "[视频]", "shortvideo": "[视频]", "location": "[位置]"}
VOICE_NOT_RECOGNISED = "抱歉，这条语音没能识别出文字。方便的话请直接输入文字，我们马上为您处理。"
NOT_TEXT = "抱歉，目前只能处理文字消息。请用文字描述您的问题；如需人工服务，请回复“转人工”。"
UNBOUND = "已为您解除绑定。之后如需查询账户信息，需要重新核实身份。"
UNKNOWN_MENU = "请直接输入您的问题，例如“查询欠款”“协商还款”，或回复“转人工”。"
TOO_LONG = "抱歉，这条消息太长了，请分几条简短发送。"
SCENE_PREFIX = "qrscene_"


class WeChatChannel:
    """One per gateway process, beside the ChatService it hands text turns to (api/channels/base.py)."""

    name = "wechat"

    def __init__(self, chat: ChatService, clock: Clock | None = None) -> None:
        self.chat = chat
        self.settings = chat.settings
        self.clock = clock or process_clock(chat.settings.app_timezone)
        self._locks = KeyedLocks()  # one push at a time per follower

    async def _db(self, work: Any, readonly: bool = False) -> Any:
        return await self.chat.db.run(work, readonly=readonly)

    async def receive(self, inbound: Push) -> TurnResult | None:
        """Handle one stored push; never raises. The bot's turn when the push was one (text, a
        menu or button tap); None for answers given here, events, and a push that failed, which
        stays pending (logged) and is taken up again when a gateway starts."""
        push = inbound
        async with self._locks.hold(push.openid):
            try:
                result = await self._process(push)
                now = self.clock.now()
                await self._db(lambda s: wechat.push_done(s, push.dedupe_key, now))
            except Exception:
                log.exception("wechat push failed", extra={"kind": push.kind})
                return None
            return result

    async def recover(self, older_than: timedelta = timedelta(seconds=60)) -> int:
        """Process the pushes a stopped gateway had answered but not handled; returns how many.

        Only pushes older than `older_than`, so a push another worker is handling right now is left
        alone; a message stored before the stop is not answered twice (its id is taken)."""
        since = self.clock.now() - older_than
        pending: list[dict[str, object]] = await self._db(lambda s: wechat.pending_pushes(s, since), readonly=True)
        names = {f.name for f in fields(Push)}
        for payload in pending:
            await self.receive(Push(**{k: v for k, v in payload.items() if k in names}))  # type: ignore[arg-type]
        if pending:
            log.warning("processed wechat pushes left from before a restart", extra={"count": len(pending)})
        return len(pending)

    async def _process(self, push: Push) -> TurnResult | None:
        if push.kind == "event":
            return await self._event(push)
        cid = await self.identify(push.openid)
        if push.kind == "text" and push.text and push.text.strip() in UNBIND_WORDS:
            now = self.clock.now()
            await self._db(lambda s: wechat.unbind(s, push.openid, now, "unbind"))
            await self._local_turn(push.openid, cid, push.text.strip(), UNBOUND, push.dedupe_key, always=True)
            return None
        if push.menu_id and await self._offered(cid, f"/{push.menu_id}"):  # a tap on a button the bot sent here
            return await self._bot_turn(push.openid, cid, f"/{push.menu_id}", push.dedupe_key)
        if push.kind in ("text", "voice") and push.text:
            try:
                text = clean_text(push.text, self.settings.max_message_chars)
            except BadInput:
                await self._local_turn(push.openid, cid, push.text[:200], TOO_LONG, push.dedupe_key)
                return None
            return await self._bot_turn(push.openid, cid, text, push.dedupe_key)
        placeholder = PLACEHOLDERS.get(push.kind, f"[{push.kind}]")
        answer = VOICE_NOT_RECOGNISED if push.kind == "voice" else NOT_TEXT
        await self._local_turn(push.openid, cid, placeholder, answer, push.dedupe_key)
        return None

    async def _offered(self, cid: str, payload: str) -> bool:
        """Whether the bot offered this button in this conversation (anything else is typed text)."""
        if not BUTTON_PAYLOAD.fullmatch(payload):
            return False

        def look(session: Session) -> bool:
            conv = conversations.find(session, cid)
            return conv is not None and payload in conversations.offered_payloads(session, conv)

        return bool(await self._db(look, readonly=True))

    async def identify(self, address: str) -> str:
        """The follower's current conversation: a new one after the idle time (verification again)."""
        openid = address
        now, idle = self.clock.now(), timedelta(minutes=self.settings.verify_idle_minutes)
        current: wechat.Current = await self._db(lambda s: wechat.conversation_for(s, openid, now, idle))
        return current.conversation_id

    async def _bot_turn(
        self, openid: str, cid: str, text: str, external_id: str, menu: bool = False
    ) -> TurnResult | None:
        try:
            result = await self.chat.handle(cid, text, "wechat", external_id=external_id, channel_menu=menu)
        except DuplicateMessage:
            return None
        now = self.clock.now()

        def after(session: Session) -> None:
            wechat.bind_if_verified(session, openid, cid, now)
            wechat.note_stop_request(session, openid, external_id, now)

        await self._db(after)
        await self.deliver(openid, cid, result.replies)
        return result

    async def _local_turn(
        self, openid: str, cid: str, said: str, answer: str, external_id: str, always: bool = False
    ) -> None:
        """A message the bot is not asked about: stored, answered here unless a person has it
        (`always`: a confirmation the holder must get either way)."""

        def store(session: Session) -> tuple[str, list[Reply]]:
            conv = conversations.find(session, cid)
            assert conv is not None
            seen = select(Message.id).where(Message.channel == "wechat", Message.external_id == external_id)
            if session.scalar(seen):  # taken up again after a restart: it was answered then
                return conv.mode, []
            conversations.append_message(session, conv, "user", said, channel="wechat", external_id=external_id)
            if conv.mode == "human" and not always:
                return "human", []
            return conv.mode, store_bot_replies(session, conv, [(answer, None)], "wechat")

        mode, replies = await self._db(store)
        self.chat.live.turn(cid, mode, replies)
        await self.deliver(openid, cid, replies)

    async def deliver(self, address: str, conversation_id: str, replies: Sequence[Reply]) -> None:
        """Each reply as a customer-service message to the follower `address` (buttons as a menu)."""
        for reply in replies:
            await deliver(
                self.settings,
                self.chat.http,
                address,
                reply.text,
                conversation_id,
                buttons=reply.buttons,
                db=self.chat.db,
            )

    async def _event(self, push: Push) -> TurnResult | None:
        event = (push.event or "").lower()
        now = self.clock.now()
        if event == "unsubscribe":
            await self._db(lambda s: wechat.unsubscribed(s, push.openid, now))
            return None
        if event in ("subscribe", "scan"):
            cid = await self.identify(push.openid)
            scene = push.event_key or ""
            scene = scene.removeprefix(SCENE_PREFIX) if event == "subscribe" else scene
            await self._greet(push.openid, cid, scene)
            return None
        if event == "click":
            cid = await self.identify(push.openid)
            payload = MENU.get((push.event_key or "").lower())
            if payload is None:
                await self._local_turn(
                    push.openid, cid, f"[菜单] {push.event_key or ''}", UNKNOWN_MENU, push.dedupe_key
                )
                return None
            # the Official Account's own menu, signed by WeChat: its keys are the bot's intents
            return await self._bot_turn(push.openid, cid, payload, push.dedupe_key, menu=True)
        # VIEW, LOCATION, TEMPLATESENDJOBFINISH ...: recorded with the push, nothing to say.
        return None

    async def _greet(self, openid: str, cid: str, scene: str) -> None:
        """A new follower is greeted; a signed scene (QR code or link from our reminder) ties the
        conversation to that account's holder, who still verifies before any detail."""
        attempt_id = signed_attempt(scene, self.settings, self.clock.now())

        def tie(session: Session) -> tuple[bool, Contact | None]:
            """Whether to greet at all (not when a person has the conversation), and in which context."""
            conv = conversations.find(session, cid)
            if conv is None or conv.mode == "human":
                return False, None
            contact = outreach.from_attempt(session, attempt_id) if attempt_id is not None else None
            if contact is not None:
                outreach.claim_for_link(session, conv, contact, "wechat.scene")
            return True, contact

        greet, contact = await self._db(tie)
        if not greet:
            return
        if contact is not None:
            replies = await self.seed(cid, contact)
        else:
            replies = (await self.chat.seed(cid, "greet", {}, channel=self.name)).replies
        await self.deliver(openid, cid, replies)

    async def seed(self, conversation_id: str, contact: Contact) -> Sequence[Reply]:
        return (await seed_from_link(self.chat, conversation_id, contact, self.name)).replies


def wechat_channel(conn: HTTPConnection) -> WeChatChannel:
    """The process's WeChatChannel, built in the app's lifespan beside the ChatService."""
    channel: WeChatChannel = conn.app.state.wechat
    return channel


WeChatDep = Annotated[WeChatChannel, Depends(wechat_channel)]


if TYPE_CHECKING:  # mypy holds WeChatChannel to the protocol every channel implements

    def _a_channel(channel: WeChatChannel) -> Channel[Push, TurnResult | None]:
        return channel
