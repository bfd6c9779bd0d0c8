"""WebSockets: a chat page follows its conversation; an agent console follows the queue.

Both close when their credential ends: the chat session's expiry, the agent token's expiry,
logout or the agent being disabled (close code 4401).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.auth import Principal, authorise_chat, bearer, console_still_authorised, principal_from_token
from api.chat import BadInput, ChatDep, ChatService, WrongChannel, chat_out, clean_text
from api.errors import ApiError
from api.hub import AGENT_TOKENS_TOPIC, QUEUE_TOPIC, conversation_topic
from api.limits import count_turn
from ledger import sessions

router = APIRouter()
log = logging.getLogger("api.live")
CONVERSATION_ID = r"^(?!sms-)[A-Za-z0-9_-]{8,64}$"  # as the HTTP chat API: never an SMS conversation
EXPIRED = 4401


async def _pump_queue(ws: WebSocket, queue: asyncio.Queue[dict[str, Any]], chat: ChatService, who: Principal) -> None:
    """Queue events, each only while the console's token is still live."""
    while True:
        event = await queue.get()
        if await console_still_authorised(chat.db, who, None, chat.clock) != "ok":
            with contextlib.suppress(RuntimeError):
                await ws.close(code=EXPIRED)
            return
        await ws.send_json(event)


async def _pump_conversation(
    ws: WebSocket,
    queue: asyncio.Queue[dict[str, Any]],
    chat: ChatService,
    who: Principal,
    cid: str,
    unfollow: Callable[[str], None],
) -> None:
    """A followed conversation's events, each only while the agent may still read it: released,
    handed to another agent, logged out or disabled, and nothing more is delivered."""
    while True:
        event = await queue.get()
        access = await console_still_authorised(chat.db, who, cid, chat.clock)
        if access != "ok":
            unfollow(cid)
            with contextlib.suppress(RuntimeError):
                if access == "token_ended":
                    await ws.close(code=EXPIRED)
                else:
                    await ws.send_json({"type": "error", "code": "not_claimed", "conversation_id": cid})
            return
        await ws.send_json(event)


async def _close_at(ws: WebSocket, when: datetime | None, now: datetime) -> None:
    if when is None:
        return
    await asyncio.sleep(max(0.0, (when - now).total_seconds()))
    with contextlib.suppress(RuntimeError):
        await ws.close(code=EXPIRED)


def _socket_token(ws: WebSocket) -> tuple[str, str | None]:
    """The bearer token from the Authorization header, or (browsers cannot set headers on a
    WebSocket) from the subprotocols ["bearer", TOKEN]; and the subprotocol to answer with.
    Never from the query string: URLs end up in proxy logs and browser history."""
    token = bearer(ws)
    if token:
        return token, None
    offered = ws.scope.get("subprotocols") or []
    if len(offered) == 2 and offered[0] == "bearer":
        return str(offered[1]), "bearer"
    return "", None


@router.websocket("/v1/chat/{conversation_id}/ws")
async def chat_socket(ws: WebSocket, conversation_id: str, chat: ChatDep) -> None:
    """Same shapes as the HTTP chat API: send {"text"}, receive {"conversation_id", "mode", "messages"}
    for each turn, and {"type": "message", ...} events when an agent writes."""
    if not re.match(CONVERSATION_ID, conversation_id):
        await ws.close(code=4400)
        return
    token, subprotocol = _socket_token(ws)
    try:
        await authorise_chat(ws, conversation_id, token)
    except ApiError:
        await ws.close(code=EXPIRED)
        return
    expires = await chat.db.run(lambda s: sessions.session_expiry(s, token), readonly=True)
    await ws.accept(subprotocol=subprotocol)
    topic = conversation_topic(conversation_id)
    queue = chat.hub.subscribe(topic)
    pump = asyncio.create_task(_agent_events(ws, queue, chat, conversation_id, token))
    timer = asyncio.create_task(_close_at(ws, expires, chat.clock.now()))
    try:
        while True:
            raw = await ws.receive_text()
            try:
                text = clean_text(str(json.loads(raw).get("text", "")), chat.settings.max_message_chars)
                await count_turn(ws, conversation_id)  # the same limits as an HTTP turn
            except (ValueError, AttributeError, BadInput) as exc:
                await ws.send_json({"error": {"code": "bad_message", "message": str(exc), "details": {}}})
                continue
            except ApiError as exc:
                await ws.send_json({"error": {"code": exc.code, "message": exc.message, "details": exc.details}})
                continue
            if not await holder_still_authorised(chat, conversation_id, token, activity=True):
                await ws.close(code=EXPIRED)  # ended (结束对话 in another tab), idle or expired
                return
            try:
                result = await chat.handle(conversation_id, text, "web")
            except WrongChannel:
                await ws.close(code=4404)
                return
            await ws.send_json(chat_out(conversation_id, result.mode, result.replies).model_dump())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        pump.cancel()
        timer.cancel()
        chat.hub.unsubscribe(topic, queue)


async def holder_still_authorised(chat: ChatService, conversation_id: str, token: str, activity: bool = False) -> bool:
    """Whether a chat page's socket may still send or receive: its session not ended by the holder,
    idle or expired. Asked at every event (remembered sessions cost no database look)."""
    return await chat.authorised(conversation_id, token, activity)


async def _agent_events(
    ws: WebSocket, queue: asyncio.Queue[dict[str, Any]], chat: ChatService, conversation_id: str, token: str
) -> None:
    """Forward only what the turn replies do not already carry: agent messages and mode changes;
    each only while the session lasts (it closes when the holder ends it)."""
    while True:
        event = await queue.get()
        if event.get("type") == "ended" or not await holder_still_authorised(chat, conversation_id, token):
            with contextlib.suppress(RuntimeError):
                await ws.close(code=EXPIRED)
            return
        if event.get("sender") == "agent" or event.get("type") == "mode":
            with contextlib.suppress(RuntimeError):
                await ws.send_json(event)


async def _watch_revocation(ws: WebSocket, principal: Principal, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        event = await queue.get()
        if event.get("jti") == principal.jti or event.get("username") == principal.username:
            with contextlib.suppress(RuntimeError):
                await ws.close(code=EXPIRED)
            return


async def _console_presence(chat: Any, username: str, status: str) -> None:
    """A console connecting makes its agent available for holders; its closing, away (the agent
    may say otherwise with POST /v1/agent/presence). Never fails the socket."""
    from ledger import handoff

    try:
        await chat.db.run(lambda s: handoff.set_presence(s, username, status, chat.clock.now()))
        chat.hub.publish(QUEUE_TOPIC, {"type": "presence", "username": username, "status": status})
    except Exception:  # presence is advisory: the console works without it
        log.warning("agent presence not recorded", extra={"agent": username})


@router.websocket("/v1/agent/ws")
async def agent_socket(ws: WebSocket, chat: ChatDep) -> None:
    """Queue changes for every agent; messages of a conversation the console has open, if the agent
    may read it (claimed by it, or a supervisor). The token comes as for the chat socket."""
    token, subprotocol = _socket_token(ws)
    principal = await asyncio.to_thread(principal_from_token, token, chat.db, chat.settings, chat.clock)
    if principal is None:
        await ws.close(code=EXPIRED)
        return
    await ws.accept(subprotocol=subprotocol)
    await _console_presence(chat, principal.username, "available")
    queue = chat.hub.subscribe(QUEUE_TOPIC)
    revocations = chat.hub.subscribe(AGENT_TOKENS_TOPIC)
    followed: dict[str, asyncio.Queue[dict[str, Any]]] = {}

    def unfollow(cid: str) -> None:
        q = followed.pop(cid, None)
        if q is not None:
            chat.hub.unsubscribe(conversation_topic(cid), q)

    pumps = {
        QUEUE_TOPIC: asyncio.create_task(_pump_queue(ws, queue, chat, principal)),
        AGENT_TOKENS_TOPIC: asyncio.create_task(_watch_revocation(ws, principal, revocations)),
        "expiry": asyncio.create_task(_close_at(ws, principal.expires_at, chat.clock.now())),
    }
    try:
        while True:  # the console says which conversation it is looking at: {"follow": id}
            message = json.loads(await ws.receive_text())
            cid = str(message.get("follow", ""))
            if not cid or cid in followed:
                continue
            access = await console_still_authorised(chat.db, principal, cid, chat.clock)
            if access == "token_ended":
                await ws.close(code=EXPIRED)
                return
            if access != "ok":
                await ws.send_json({"type": "error", "code": "not_claimed", "conversation_id": cid})
                continue
            followed[cid] = chat.hub.subscribe(conversation_topic(cid))
            pumps[cid] = asyncio.create_task(_pump_conversation(ws, followed[cid], chat, principal, cid, unfollow))
    except (WebSocketDisconnect, ValueError, RuntimeError):
        pass
    finally:
        for task in pumps.values():
            task.cancel()
        chat.hub.unsubscribe(QUEUE_TOPIC, queue)
        chat.hub.unsubscribe(AGENT_TOKENS_TOPIC, revocations)
        for cid in list(followed):
            unfollow(cid)
        await _console_presence(chat, principal.username, "away")
