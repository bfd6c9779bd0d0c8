"""Faults with the real stack: Rasa killed mid-conversation. The test starts Rasa again before it
ends, so the tests after it (in any order) find the stack whole."""

from __future__ import annotations

import os
import signal

import pytest

from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def test_rasa_down_mid_conversation_gives_a_holding_reply(running: Running, conversation_id: str) -> None:
    assert running.say(conversation_id, "你好")["mode"] == "bot"
    rasa = running.stack.procs["rasa"]
    os.killpg(rasa.pid, signal.SIGKILL)
    rasa.wait()
    try:
        reply = running.say(conversation_id, "我想分期还款")
        assert reply["mode"] == "human" and "人工" in reply["messages"][0]["text"]  # type: ignore[index]
        later = running.say(conversation_id, "有人吗")  # issue 29: heard, never silence; not the holding reply twice
        assert later["mode"] == "human"
        [waiting] = later["messages"]  # type: ignore[misc]
        assert "系统正在恢复" in waiting["text"]
    finally:
        del running.stack.procs["rasa"]
        running.stack.start(running.secrets, names=["rasa"])
        running.stack.wait_healthy(timeout=300)
