"""WebChannel: the web chat page as a channel (api/channels/base.py).

The page's address is the conversation id the server chose when the session opened; the
session token that proves it is checked by the route (api/auth.py) before anything here runs.
Replies need no sending: they are the HTTP answer, and the live hub pushes them to the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from api.channels import links
from api.channels.base import Channel
from api.channels.seed import seed_from_link, signed_attempt
from api.chat import ChatService, Reply, TurnResult, chat_service, clean_text
from ledger import outreach, sessions
from ledger.outreach import Contact


class LinkInvalid(Exception):
    """The link is altered, expired, or names no contact of ours: it opens nothing."""


@dataclass(frozen=True)
class WebMessage:
    conversation_id: str
    text: str


class WebChannel:
    name = "web"

    def __init__(self, chat: ChatService) -> None:
        self.chat = chat

    async def identify(self, address: str) -> str:
        return address  # the conversation id itself, proven by the session token

    async def receive(self, inbound: WebMessage) -> TurnResult:
        """BadInput when nothing is left of the text or it is too long; WrongChannel when the
        conversation is not a web one."""
        text = clean_text(inbound.text, self.chat.settings.max_message_chars)
        return await self.chat.handle(await self.identify(inbound.conversation_id), text, self.name)

    async def deliver(self, address: str, conversation_id: str, replies: Sequence[Reply]) -> None:
        return None  # the page reads them (HTTP answer, GET messages, the live hub)

    async def seed(self, conversation_id: str, contact: Contact) -> Sequence[Reply]:
        return (await seed_from_link(self.chat, conversation_id, contact, self.name)).replies

    async def open_session(self, link_token: str | None) -> sessions.OpenedSession:
        """A new web conversation. A link token (our SMS link) ties it to the account's phone and
        greets the holder in context; LinkInvalid if it is not authentic, expired or names nothing."""
        chat = self.chat
        if not link_token:
            opened = await chat.db.run(lambda s: sessions.open_session(s, chat.clock))
            chat.access.opened(opened)
            return opened
        attempt_id = signed_attempt(link_token, chat.settings, chat.clock.now())
        expires = links.expiry(link_token)
        if attempt_id is None or expires is None:
            raise LinkInvalid

        def tie(session: Session) -> tuple[sessions.OpenedSession, Contact]:
            contact = outreach.from_attempt(session, attempt_id)
            if contact is None:
                raise LinkInvalid
            opened = sessions.open_session(
                session, chat.clock, phone=contact.phone, link_attempt_pk=contact.attempt_pk, not_after=expires
            )
            return opened, contact

        opened, contact = await chat.db.run(tie)
        chat.access.opened(opened)
        await self.seed(opened.conversation_id, contact)
        return opened


def web_channel(conn: HTTPConnection) -> WebChannel:
    return WebChannel(chat_service(conn))


WebDep = Annotated[WebChannel, Depends(web_channel)]


if TYPE_CHECKING:  # mypy holds WebChannel to the protocol every channel implements

    def _a_channel(channel: WebChannel) -> Channel[WebMessage, TurnResult | None]:
        return channel
