"""WebSockets: a chat page follows its conversation; an agent console follows the queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.auth import agent_from_token
from api.chat import BadInput, ChatService, WrongChannel, chat_out, clean_text
from api.hub import QUEUE_TOPIC, conversation_topic

router = APIRouter()
CONVERSATION_ID = r"^(?!sms-)[A-Za-z0-9_-]{8,64}$"  # as the HTTP chat API: never an SMS conversation


async def _pump(ws: WebSocket, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        await ws.send_json(await queue.get())


@router.websocket("/v1/chat/{conversation_id}/ws")
async def chat_socket(ws: WebSocket, conversation_id: str) -> None:
    """Same shapes as the HTTP chat API: send {"text"}, receive {"conversation_id", "mode", "messages"}
    for each turn, and {"type": "message", ...} events when an agent writes."""
    if not re.match(CONVERSATION_ID, conversation_id):
        await ws.close(code=4400)
        return
    await ws.accept()
    chat: ChatService = ws.app.state.chat
    topic = conversation_topic(conversation_id)
    queue = chat.hub.subscribe(topic)
    pump = asyncio.create_task(_agent_events(ws, queue))
    try:
        while True:
            raw = await ws.receive_text()
            try:
                text = clean_text(str(json.loads(raw).get("text", "")), chat.settings.max_message_chars)
            except (ValueError, AttributeError, BadInput) as exc:
                await ws.send_json({"error": {"code": "bad_message", "message": str(exc), "details": {}}})
                continue
            try:
                result = await chat.handle(conversation_id, text, "web")
            except WrongChannel:
                await ws.close(code=4404)
                return
            await ws.send_json(chat_out(conversation_id, result.mode, result.replies).model_dump())
    except WebSocketDisconnect:
        pass
    finally:
        pump.cancel()
        chat.hub.unsubscribe(topic, queue)


async def _agent_events(ws: WebSocket, queue: asyncio.Queue[dict[str, Any]]) -> None:
    """Forward only what the turn replies do not already carry: agent messages and mode changes."""
    while True:
        event = await queue.get()
        if event.get("sender") == "agent" or event.get("type") == "mode":
            with contextlib.suppress(RuntimeError):
                await ws.send_json(event)


@router.websocket("/v1/agent/ws")
async def agent_socket(ws: WebSocket, token: str = "") -> None:
    """Queue changes for every agent; messages of the conversation the console has open."""
    chat: ChatService = ws.app.state.chat
    if agent_from_token(token, chat.settings) is None:
        await ws.close(code=4401)
        return
    await ws.accept()
    queue = chat.hub.subscribe(QUEUE_TOPIC)
    pumps = {QUEUE_TOPIC: asyncio.create_task(_pump(ws, queue))}
    followed: dict[str, asyncio.Queue[dict[str, Any]]] = {}
    try:
        while True:  # the console says which conversation it is looking at: {"follow": id}
            message = json.loads(await ws.receive_text())
            cid = str(message.get("follow", ""))
            if cid and cid not in followed:
                followed[cid] = chat.hub.subscribe(conversation_topic(cid))
                pumps[cid] = asyncio.create_task(_pump(ws, followed[cid]))
    except (WebSocketDisconnect, ValueError):
        pass
    finally:
        for task in pumps.values():
            task.cancel()
        chat.hub.unsubscribe(QUEUE_TOPIC, queue)
        for cid, q in followed.items():
            chat.hub.unsubscribe(conversation_topic(cid), q)
