"""The gateway's channel into Rasa: one POST returns the bot's replies and the parsed intent.

Like the REST channel, but the message is parsed once up front and the parse goes back
with the replies, so the gateway can write intent and confidence into the transcript
without a second round trip for the tracker.

Only the gateway may call it: every request carries header `X-Channel-Secret` equal to
RASA_CHANNEL_SECRET (unset: every request is refused). The REST-compatible channel kept for
the bare-Rasa benchmark (`/webhooks/rest/webhook`) takes the same secret and the same checks.

No message becomes an intent by its spelling: text that reads as `/intent{...}` once
normalised reaches Rasa as an intent only when it is exactly a button payload the bot sent
in that conversation; anything else is parsed as the words it is.
"""

from __future__ import annotations

import hmac
import os
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.shared.core.events import BotUttered
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import speedups
from bot.normalize import looks_like_command, script_of, strip_invisible, to_traditional

SECRET_HEADER = "X-Channel-Secret"
SECRET_ENTITIES = ("id_last4", "card_last4", "last4")
# The script each conversation's holder writes, most recent last: replies follow the script of
# the holder's last message that shows one ("好的" or digits show none). Kept in this process
# (bounded) as a cache; a conversation it does not hold (a restart, another Rasa server) is read
# from the tracker's stored user messages (`script_from_tracker`).
_SCRIPTS: OrderedDict[str, bool] = OrderedDict()  # sender -> writes traditional
_SCRIPTS_MAX = 50_000


# Several questions in one message ("我欠多少钱 怎么还款 逾期会影响征信吗"): each clause that is a
# question of its own is handled as its own turn, in order, at most three.
QUESTION_INTENTS = frozenset(
    {"ask_debt_amount", "ask_fee_detail", "ask_consequences", "ask_repayment_method", "ask_plan_terms", "faq"}
)
MAX_QUESTIONS = 3
CLAUSE_CONFIDENCE = 0.5
_CLAUSES = re.compile(r"[？?。！!；;，,、\s]+")


def _question_key(parse: dict[str, Any]) -> str | None:
    """What a clause asks (its intent, or its knowledge-base topic), or None when it is not a question."""
    intent = parse.get("intent") or {}
    if intent.get("name") not in QUESTION_INTENTS or float(intent.get("confidence") or 0) < CLAUSE_CONFIDENCE:
        return None
    if intent["name"] == "faq":
        selector = (parse.get("response_selector") or {}).get("faq") or {}
        return str((selector.get("response") or {}).get("intent_response_key") or "faq")
    return str(intent["name"])


async def questions_in(agent: Any, text: str, parse: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The separate questions of a message that asks two or more, each with its parse (at most
    three); [] when the message is one question or anything else (a story with a question in it)."""
    if _question_key(parse) is None:
        return []
    clauses = [c for c in _CLAUSES.split(text) if len(c) >= 2]
    if not 2 <= len(clauses) <= 2 * MAX_QUESTIONS:
        return []
    kept: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for clause in clauses:
        clause_parse = await agent.parse_message(clause)
        if (clause_parse.get("intent") or {}).get("name") in ("greet", "thank"):
            continue  # "你好 请问..." : the greeting needs no answer of its own
        key = _question_key(clause_parse)
        if key is None:
            return []  # a clause that is not a question: the message is read as a whole
        if key not in seen:
            seen.add(key)
            kept.append((clause, clause_parse))
    return kept[:MAX_QUESTIONS] if len(kept) >= 2 else []


def writes_traditional(sender: str, text: str, before: bool | None = None) -> bool:
    """Whether to answer `sender` in traditional characters after `text`: the script `text` shows,
    else the one remembered, else `before` (what the stored conversation showed, if known)."""
    script = script_of(text)
    if script is not None:
        traditional = script == "traditional"
    elif sender in _SCRIPTS:
        traditional = _SCRIPTS[sender]
    else:
        traditional = bool(before)
    _SCRIPTS[sender] = traditional
    _SCRIPTS.move_to_end(sender)
    while len(_SCRIPTS) > _SCRIPTS_MAX:
        _SCRIPTS.popitem(last=False)
    return traditional


def script_in(texts: list[str]) -> bool:
    """Whether the latest of `texts` (oldest first) that shows a script shows traditional."""
    for text in reversed(texts):
        script = script_of(text)
        if script is not None:
            return script == "traditional"
    return False


async def script_from_tracker(agent: Any, sender: str) -> bool:
    """What a conversation this process does not remember showed: its stored user messages."""
    try:
        tracker = await agent.tracker_store.retrieve(sender)
    except Exception:  # the store away: simplified, as for a new conversation
        return False
    if tracker is None:
        return False
    return script_in([str(e.text) for e in tracker.events if getattr(e, "type_name", "") == "user" and e.text])


async def answers_in_traditional(agent: Any, sender: str, text: str) -> bool:
    if script_of(text) is None and sender not in _SCRIPTS:
        return writes_traditional(sender, text, await script_from_tracker(agent, sender))
    return writes_traditional(sender, text)


def in_traditional(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The replies with their text and button titles in traditional characters (payloads unchanged)."""
    out = []
    for message in messages:
        message = dict(message)
        if isinstance(message.get("text"), str):
            message["text"] = to_traditional(message["text"])
        if message.get("buttons"):
            message["buttons"] = [{**b, "title": to_traditional(str(b.get("title", "")))} for b in message["buttons"]]
        out.append(message)
    return out


def secret_ok(given: str | None) -> bool:
    expected = os.environ.get("RASA_CHANNEL_SECRET", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def _refuse_strangers(request: Request) -> HTTPResponse | None:
    if not secret_ok(request.headers.get(SECRET_HEADER)):
        return response.json({"error": "forbidden"}, status=403)
    return None


async def offered_payloads(agent: Any, sender: str) -> set[str]:
    """Every button payload the bot sent in this conversation (from its tracker)."""
    tracker = await agent.tracker_store.retrieve(sender) if agent.tracker_store else None
    if tracker is None:
        return set()
    return {
        str(button.get("payload", ""))
        for event in tracker.events
        if isinstance(event, BotUttered)
        for button in (event.data or {}).get("buttons") or []
    }


async def admit(agent: Any, sender: str, text: str, vouched: bool = False) -> tuple[str, dict[str, Any]]:
    """The text Rasa will see and its parse. An offered payload is unpacked here, directly; anything
    else goes through the NLU pipeline, whose normaliser never lets a leading "/" through.
    `vouched`: the gateway (which holds the channel secret) says this is its channel's own menu
    (a WeChat CLICK key, signed by WeChat), not typed text."""
    if looks_like_command(text):
        payload = strip_invisible(text).strip()
        if vouched or payload in await offered_payloads(agent, sender):
            unpacked = YAMLStoryReader.unpack_regex_message(Message(data={TEXT: payload}), agent.domain)
            parse: dict[str, Any] = {TEXT: payload, INTENT: {"name": None, "confidence": 0.0}, ENTITIES: []}
            parse.update(unpacked.as_dict(only_output_properties=True))
            return payload, parse
        text = strip_invisible(text).strip().lstrip("/").strip() or "?"
    return text, await agent.parse_message(text)


def _handler(
    on_new_message: Callable[[UserMessage], Awaitable[Any]], channel: str, with_parse: bool
) -> Callable[[Request], Awaitable[HTTPResponse]]:
    async def receive(request: Request) -> HTTPResponse:
        body = request.json or {}
        sender, text = body.get("sender"), body.get("message")
        if not isinstance(sender, str) or not isinstance(text, str):
            return response.json({"error": "sender and message are required"}, status=400)
        metadata = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
        traditional = await answers_in_traditional(request.app.ctx.agent, sender, text)
        text, parse = await admit(request.app.ctx.agent, sender, text, vouched=metadata.get("channel_menu") is True)
        collector = CollectingOutputChannel()
        turns = await questions_in(request.app.ctx.agent, text, parse) or [(text, parse)]
        for turn_text, turn_parse in turns:
            await on_new_message(
                UserMessage(
                    turn_text,
                    collector,
                    sender,
                    parse_data=turn_parse,
                    input_channel=channel,
                    metadata=body.get("metadata"),
                )
            )
        replies = in_traditional(collector.messages) if traditional else collector.messages
        if not with_parse:
            return response.json(replies)
        intent = parse.get("intent") or {}
        # The verification answers in this message, so the gateway can mask them in its transcript.
        secret = [e.get("value") for e in parse.get("entities") or [] if e.get("entity") in SECRET_ENTITIES]
        return response.json(
            {
                "intent": intent.get("name"),
                "confidence": intent.get("confidence"),
                "secret_values": [str(v) for v in secret if v],
                "messages": replies,
            }
        )

    return receive


def _blueprint(name: str, handler: Callable[[Request], Awaitable[HTTPResponse]]) -> Blueprint:
    hook = Blueprint(name, __name__)
    hook.middleware("request")(_refuse_strangers)

    @hook.route("/", methods=["GET"])
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    hook.add_route(handler, "/webhook", methods=["POST"])  # type: ignore[arg-type]  # sanic wants a Coroutine
    return hook


class GatewayInput(RestInput):
    def __init__(self) -> None:
        super().__init__()
        speedups.install()  # this channel is loaded by `rasa run` only: the patch never touches training

    @classmethod
    def name(cls) -> str:
        return "gateway"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        return _blueprint("gateway_webhook", _handler(on_new_message, "gateway", with_parse=True))


class SecretRestInput(RestInput):
    """Rasa's REST channel (same URL and reply shape), behind the channel secret and the same checks."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        return _blueprint("rest_webhook", _handler(on_new_message, "rest", with_parse=False))
