"""The one way a conversation starts from our own outreach, on every channel.

A signed web link, a signed WeChat scene, an SMS answering our campaign within a week: the
ledger says which contact it is (ledger/outreach.py); here the bot is asked to greet the holder
as that outbound contact, on the conversation's own channel.
"""

from __future__ import annotations

from datetime import datetime

from api.channels import links
from api.chat import ChatService, TurnResult
from ledger.outreach import OUTBOUND_CONTACT, Contact
from settings import Settings


def signed_attempt(token: str, settings: Settings, now: datetime) -> int | None:
    """The contact attempt a signed link or scene names, if authentic and unexpired."""
    return links.verify(token, settings.link_signing_key.get_secret_value(), now) if token else None


async def seed_from_link(chat: ChatService, conversation_id: str, contact: Contact, channel: str) -> TurnResult:
    """The bot greets `conversation_id` as the outbound contact `contact`; its replies are stored."""
    return await chat.seed(conversation_id, OUTBOUND_CONTACT, contact.entities(), channel=channel)
