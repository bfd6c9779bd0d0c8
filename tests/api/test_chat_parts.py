"""The chat parts on their own: per-conversation state kept only while in use, one Rasa policy."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.chat import HOLDING_REPLY, RasaClient, RasaDown
from api.chat.locks import KeyedLocks
from api.hub import conversation_topic
from ledger.db import Database
from ledger.models import Conversation, Message
from settings import Settings
from tests.fake_rasa import Answer, chat_service, fake_rasa, says


def test_a_keys_lock_orders_its_users_and_is_dropped_when_the_last_leaves() -> None:
    async def run() -> tuple[list[str], list[int], int]:
        locks = KeyedLocks()
        order: list[str] = []
        sizes: list[int] = []

        async def use(key: str, name: str) -> None:
            async with locks.hold(key):
                sizes.append(len(locks))
                order.append(f"{name}+")
                await asyncio.sleep(0.01)
                order.append(f"{name}-")

        await asyncio.gather(use("a", "a1"), use("a", "a2"), use("b", "b1"))
        return order, sizes, len(locks)

    order, sizes, left = asyncio.run(run())
    assert order.index("a1-") < order.index("a2+")  # one at a time per key, in arrival order
    assert order.index("b1+") < order.index("a1-")  # other keys do not wait
    assert max(sizes) == 2 and left == 0


def test_a_lock_is_dropped_even_when_its_holder_fails() -> None:
    async def run() -> int:
        locks = KeyedLocks()
        with pytest.raises(RuntimeError):
            async with locks.hold("a"):
                raise RuntimeError("the turn failed")
        return len(locks)

    assert asyncio.run(run()) == 0


def test_a_gateway_keeps_no_state_for_conversations_that_have_finished(database_url: str, db: Database) -> None:
    """The soak's slow memory growth: nothing per conversation may stay once its turns are done."""

    async def run() -> tuple[int, int, list[str]]:
        async with chat_service(db, lambda method, path, body: says("您好")) as service:
            hub = service.hub
            ids = [f"mem-{uuid.uuid4().hex[:8]}" for _ in range(30)]
            queues = [hub.subscribe(conversation_topic(cid)) for cid in ids]  # pages following them
            results = await asyncio.gather(*(service.handle(cid, "你好") for cid in ids for _ in range(2)))
            for cid, queue in zip(ids, queues, strict=True):
                hub.unsubscribe(conversation_topic(cid), queue)  # the pages close
            return len(service.turns.locks), len(hub._topics), [r.replies[0].text for r in results]

    locks, topics, replies = asyncio.run(run())
    assert replies == ["您好"] * 60
    assert locks == 0 and topics == 0


def test_every_call_to_rasa_has_the_same_deadline_and_admission(database_url: str) -> None:
    """A turn, a seeded conversation and a resume all wait for the same slots, within one deadline."""
    inside, most = 0, 0

    async def slow(method: str, path: str, body: Any) -> Answer:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.2)
        inside -= 1
        if path.endswith("/trigger_intent"):
            return 200, {"messages": [{"text": "您好，这里是银行"}]}
        return says("您好")

    async def run() -> tuple[list[object], int]:
        async with fake_rasa(slow) as url:
            settings = Settings(database_url=database_url, rasa_url=url, rasa_max_in_flight=1, rasa_timeout_seconds=0.5)
            client = RasaClient(settings)
            calls = [
                client.message("conv-one", "你好", {"channel": "web"}),
                client.trigger_intent("conv-two", "greet", {}),
                client.resume("conv-three"),
                client.message("conv-four", "你好", {"channel": "web"}),
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            await client.aclose()
        return list(results), most

    results, most = asyncio.run(run())
    assert most == 1  # one at a time inside the (single) server, whatever the call
    # 0.2 s each, one at a time, 0.5 s for each to finish: the third and fourth are too late.
    assert isinstance(results[0], dict) and results[1] == [{"text": "您好，这里是银行"}]
    assert results[2] is False and isinstance(results[3], RasaDown)


def test_a_seeded_conversation_past_the_deadline_gets_the_holding_reply(database_url: str, db: Database) -> None:
    async def hung(method: str, path: str, body: Any) -> Answer:
        await asyncio.sleep(1)
        return 200, {"messages": [{"text": "太晚了"}]}

    async def run() -> list[str]:
        async with chat_service(db, hung, rasa_timeout_seconds=0.2) as service:
            result = await service.seed(f"seed-{uuid.uuid4().hex[:8]}", "greet", {})
        return [r.text for r in result.replies]

    assert asyncio.run(run()) == [HOLDING_REPLY]


def test_a_typed_message_is_stored_while_the_bot_reads_it_but_a_lapse_is_written_first(db: Database) -> None:
    """A plain typed message changes nothing the bot's actions read, so the bot is asked while its
    store finishes; a message that lapses an idle verification is stored (the lapse written)
    before the bot is asked, or its actions would still see the holder verified. The transcript
    keeps every message before its replies either way. Each write here waits 0.3 s before its
    commit, so the stand-in Rasa can tell whether the message's store had committed when it
    was asked."""
    plain, idle_one = (f"alongside-{uuid.uuid4().hex[:8]}" for _ in range(2))
    writes_done: list[float] = []
    seen: list[tuple[str, int, bool]] = []  # (text, writes committed by then, still verified)

    def stored(cid: str) -> tuple[list[str], bool]:
        with db.transaction(readonly=True) as s:
            conv = s.scalar(select(Conversation).where(Conversation.conversation_id == cid))
            assert conv is not None
            texts = s.scalars(select(Message.text).where(Message.conversation_pk == conv.id).order_by(Message.seq))
            return list(texts), conv.verified_at is not None

    def rasa(method: str, path: str, body: Any) -> Answer:
        if body["message"] == "我欠多少":
            verified = body["sender"] == idle_one and stored(idle_one)[1]
            seen.append((body["sender"], len(writes_done), verified))
        return says("好的")

    async def run() -> tuple[list[str], list[str]]:
        async with chat_service(db, rasa) as service:
            for cid in (plain, idle_one):  # each conversation's first message creates it (stored first)
                await service.handle(cid, "你好")
            long_ago = service.clock.now() - timedelta(minutes=service.settings.verify_idle_minutes + 1)
            with db.transaction() as s:  # verified, then silent for longer than the idle window
                s.execute(
                    update(Conversation)
                    .where(Conversation.conversation_id == idle_one)
                    .values(verified_at=long_ago, last_holder_at=long_ago)
                )
            run_work = db.run

            async def slow_writes(work, **kw):  # type: ignore[no-untyped-def]
                def slow(session: Session) -> Any:
                    done = work(session)
                    time.sleep(0.3)  # before the commit
                    return done

                result = await run_work(slow, **kw)
                writes_done.append(time.monotonic())
                return result

            service.turns.db = cast(Database, SimpleNamespace(run=slow_writes))
            for cid in (plain, idle_one):
                await service.handle(cid, "我欠多少")
        return stored(plain)[0], stored(idle_one)[0]

    plain_transcript, idle_transcript = asyncio.run(run())
    # The plain message: asked before its store committed. The idle one: asked after its store
    # (and the plain turn's two writes) committed, the lapse already written.
    assert seen == [(plain, 0, False), (idle_one, 3, False)]
    assert plain_transcript == idle_transcript == ["你好", "好的", "我欠多少", "好的"]
