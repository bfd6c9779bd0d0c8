"""A holder who writes traditional characters is answered in them (issue 28)."""

from __future__ import annotations

from bot.channel import in_traditional, writes_traditional
from bot.normalize import normalize, script_of


def test_the_script_is_read_from_the_message() -> None:
    assert script_of("你好，請問我還欠多少錢") == "traditional"
    assert script_of("我想申请分期") == "simplified"
    assert script_of("13912345678") is None and script_of("好的") is None


def test_replies_follow_the_holders_script_until_they_write_simplified() -> None:
    assert writes_traditional("conv-t", "可以分期還款嗎")
    assert writes_traditional("conv-t", "13912345678")  # digits keep the conversation's script
    assert writes_traditional("conv-t", "好的")
    assert not writes_traditional("conv-t", "我想申请延期")
    assert not writes_traditional("conv-s", "好的")


def test_reply_text_and_button_titles_are_converted_and_payloads_kept() -> None:
    [out] = in_traditional(
        [
            {
                "recipient_id": "c",
                "text": "验证通过，请问有什么可以帮您？",
                "buttons": [{"title": "确认办理", "payload": "/affirm"}],
            }
        ]
    )
    assert out["text"] == "驗證通過，請問有什麼可以幫您？"
    assert out["buttons"] == [{"title": "確認辦理", "payload": "/affirm"}]


def test_a_traditional_button_title_typed_back_reads_as_the_simplified_one() -> None:
    assert normalize("確認辦理") == "确认办理"


def test_a_conversation_this_process_never_saw_follows_its_stored_messages() -> None:
    """After a restart, or on a second Rasa server, "好的" in a traditional conversation was
    answered in simplified characters: the script lived only in one process's memory."""
    import asyncio
    from types import SimpleNamespace

    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.channel import answers_in_traditional

    store = InMemoryTrackerStore(Domain.empty())
    for sender, said in (("stored-t", "可以分期還款嗎"), ("stored-s", "我想申请分期")):
        tracker = DialogueStateTracker(sender, [])
        tracker.update(UserUttered(said))
        tracker.update(UserUttered("13912345678"))  # shows no script: the one before it counts
        asyncio.run(store.save(tracker))
    agent = SimpleNamespace(tracker_store=store)
    assert asyncio.run(answers_in_traditional(agent, "stored-t", "好的"))
    assert not asyncio.run(answers_in_traditional(agent, "stored-s", "好的"))
    assert not asyncio.run(answers_in_traditional(agent, "never-seen", "好的"))
    assert not asyncio.run(answers_in_traditional(agent, "stored-t", "我想申请延期"))  # simplified now
