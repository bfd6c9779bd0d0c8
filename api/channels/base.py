"""The one protocol every channel implements: web, SMS, WeChat, voice (api/channels/<name>/).

A channel is a way a holder reaches us. Its class does four things and no more:

- identify: which conversation an inbound address (a phone, an openid, a call, a web
  conversation id) is writing to now;
- receive: one inbound message as the provider gave it (already authenticated by the route)
  becomes a turn of that conversation;
- deliver: the replies of a turn go back out on this channel;
- seed: a conversation our own outreach started (a signed link, a reply to a campaign SMS)
  opens in that context, through the one `seed_from_link` (api/channels/seed.py).

The turn itself (order, idempotency, Rasa, guard, storage) is the ChatService's (api/chat/);
what may be said or sent is the ledger's. Routes only check the provider's signature, turn
the request into the channel's inbound type and the outcome into HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from api.chat import Reply
from ledger.outreach import Contact

InboundT = TypeVar("InboundT", contravariant=True)
AnswerT = TypeVar("AnswerT", covariant=True)


class Channel(Protocol[InboundT, AnswerT]):
    """What a channel class offers; `InboundT` is its provider's inbound message, `AnswerT` what
    receiving it gives back: the turn (`TurnResult | None`) for web, SMS and WeChat, whose replies
    go out by `deliver` or in the HTTP answer; for voice, the TwiML the provider is answered with,
    the replies spoken in it."""

    name: str  # the channel as stored on conversations and messages: "web", "sms", "wechat", "voice"

    async def identify(self, address: str) -> str:
        """The conversation id the holder at `address` is writing to now (opened if needed)."""
        ...

    async def receive(self, inbound: InboundT) -> AnswerT:
        """One inbound message as a turn; its replies delivered unless the caller answers them
        itself (web: in the HTTP answer). None when there was no turn to take (a provider's
        retry of a message already answered, an event with nothing to say)."""
        ...

    async def deliver(self, address: str, conversation_id: str, replies: Sequence[Reply]) -> None:
        """Send replies out to `address` on this channel (web: nothing to send, the page reads them)."""
        ...

    async def seed(self, conversation_id: str, contact: Contact) -> Sequence[Reply]:
        """Start `conversation_id` as the outbound contact `contact` (seed_from_link); the
        bot's greeting, for the caller to deliver with whatever else it sends."""
        ...
