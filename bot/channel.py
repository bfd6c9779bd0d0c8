"""The gateway's channel into Rasa: one POST returns the bot's replies and the parsed intent.

Like the REST channel, but the message is parsed once up front and the parse goes back
with the replies, so the gateway can write intent and confidence into the transcript
without a second round trip for the tracker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import speedups


class GatewayInput(RestInput):
    def __init__(self) -> None:
        super().__init__()
        speedups.install()  # this channel is loaded by `rasa run` only: the patch never touches training

    @classmethod
    def name(cls) -> str:
        return "gateway"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("gateway_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json or {}
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not isinstance(text, str):
                return response.json({"error": "sender and message are required"}, status=400)
            agent = request.app.ctx.agent
            parse = await agent.parse_message(text) if not text.startswith("/") else None
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(
                    text, collector, sender, parse_data=parse, input_channel="gateway", metadata=body.get("metadata")
                )
            )
            intent = (parse or {}).get("intent") or {}
            return response.json(
                {
                    "intent": intent.get("name"),
                    "confidence": intent.get("confidence"),
                    "messages": collector.messages,
                }
            )

        return hook
