"""SmsChannel: text messages as a channel (api/channels/base.py).

A phone is one conversation, `sms-<phone>`. A first message from a phone our campaign wrote to
in the last week starts in that context (seed_from_link); every reply goes out through the same
contact decision as any other send (api/channels/sms/provider.py, ledger/compliance.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.channels.base import Channel
from api.channels.seed import seed_from_link
from api.channels.sms.provider import SmsProvider, as_sms, provider_for, send_reply
from api.chat import ChatService, DuplicateMessage, Reply, TurnResult, chat_service, clean_text
from ledger import conduct, outreach
from ledger.clock import process_clock
from ledger.outreach import Contact

CAMPAIGN_REPLY_WINDOW = timedelta(days=7)  # an answer to our campaign SMS within this starts in context


@dataclass(frozen=True)
class SmsMessage:
    phone: str  # normalised (api/schemas/common.py)
    text: str
    message_sid: str


class SmsChannel:
    name = "sms"

    def __init__(self, chat: ChatService, provider: SmsProvider) -> None:
        self.chat = chat
        self.provider = provider

    async def identify(self, address: str) -> str:
        return f"sms-{address}"

    async def receive(self, inbound: SmsMessage) -> TurnResult | None:
        """The turn, then its replies out by SMS; None for a provider's retry (answered once
        already). BadInput when nothing is left of the text or it is too long. "退订" and its
        like suppress the number whatever the bot says."""
        chat, phone = self.chat, inbound.phone
        text = clean_text(inbound.text, chat.settings.max_message_chars)
        cid = await self.identify(phone)
        wrote_at = chat.clock.now()
        seeded = await self._seed_if_replying_to_campaign(cid, phone)
        try:
            result = await chat.handle(cid, text, self.name, external_id=inbound.message_sid, phone=phone)
        except DuplicateMessage:
            return None
        if conduct.is_sms_opt_out(text):
            # The number's owner decides what it receives: recorded here, whatever the bot says (or if it is away).
            await chat.db.run(lambda s: conduct.suppress_number(s, phone, "sms", "opt_out", chat.clock, actor=cid))
        await self.deliver(phone, cid, [*seeded, *result.replies], wrote_at=wrote_at)
        return result

    async def deliver(
        self, address: str, conversation_id: str, replies: Sequence[Reply], wrote_at: datetime | None = None
    ) -> None:
        """Each reply as one SMS (split into segments), if the contact rules let it go; `wrote_at`:
        when the holder wrote, which the rules for a reply count from."""
        chat = self.chat
        wrote_at = wrote_at or chat.clock.now()
        for reply in replies:
            text_out = as_sms(reply.text, reply.buttons)
            await send_reply(
                self.provider,
                chat.settings,
                chat.policy,
                chat.clock,
                address,
                text_out,
                conversation_id,
                wrote_at,
                db=chat.db,
            )

    async def seed(self, conversation_id: str, contact: Contact) -> Sequence[Reply]:
        return list((await seed_from_link(self.chat, conversation_id, contact, self.name)).replies)

    async def _seed_if_replying_to_campaign(self, cid: str, phone: str) -> Sequence[Reply]:
        since = process_clock(self.chat.settings.app_timezone).now() - CAMPAIGN_REPLY_WINDOW
        contact = await self.chat.db.run(lambda s: outreach.from_reply(s, cid, phone, since), readonly=True)
        return [] if contact is None else await self.seed(cid, contact)


def sms_channel(conn: HTTPConnection) -> SmsChannel:
    chat = chat_service(conn)
    return SmsChannel(chat, provider_for(chat.settings, chat.http))


SmsDep = Annotated[SmsChannel, Depends(sms_channel)]


if TYPE_CHECKING:  # mypy holds SmsChannel to the protocol every channel implements

    def _a_channel(channel: SmsChannel) -> Channel[SmsMessage, TurnResult | None]:
        return channel
