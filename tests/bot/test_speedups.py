"""The response-validation fix keeps Rasa's behaviour: valid passes, invalid raises the same error."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

from bot import speedups

GOOD = {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": [{"text": "你好"}]}
BAD = {"events": [{"name": "no event key"}], "responses": []}


def test_patched_validation_agrees_with_jsonschema() -> None:
    spec = RemoteAction.action_response_format_spec()
    speedups.install()
    speedups.install()  # idempotent
    action = RemoteAction("action_x", None)
    assert action._validate_action_result(GOOD) is True
    validate(GOOD, spec)
    with pytest.raises(ValidationError) as ours:
        action._validate_action_result(BAD)
    with pytest.raises(ValidationError) as theirs:
        validate(BAD, spec)
    assert ours.value.message.startswith(theirs.value.message)
    assert "Failed to validate Action server response" in ours.value.message


def test_the_cached_graph_parses_and_predicts_as_rasa_does() -> None:
    """Same model, same messages: the patched graph runner gives Rasa's own parse, twice over."""
    import asyncio
    from pathlib import Path

    from rasa.core.agent import Agent

    model = Path(__file__).resolve().parents[2] / "models" / "current.tar.gz"
    if not model.exists():
        pytest.skip("needs the trained model (make train)")
    texts = ["你好", "我现在欠多少钱", "我想分6期", "我下周五还500", "转人工"]

    async def parses(agent: Agent) -> list[object]:
        return [await agent.parse_message(t) for t in texts + texts]

    from rasa.engine.runner.dask import DaskGraphRunner

    original = getattr(DaskGraphRunner.run, "__wrapped__", DaskGraphRunner.run)  # Rasa's own run
    DaskGraphRunner.run = original  # type: ignore[method-assign]
    agent = Agent.load(str(model))
    theirs = asyncio.run(parses(agent))
    speedups._cache_graph_per_targets()
    try:
        ours = asyncio.run(parses(agent))
    finally:
        DaskGraphRunner.run = original  # type: ignore[method-assign]
    assert ours == theirs
    assert agent.processor.graph_runner.__dict__.get("_graphs_by_targets")  # type: ignore[union-attr]  # used
    assert [p["intent"]["name"] for p in ours[:5]] == [p["intent"]["name"] for p in ours[5:]]  # type: ignore[index]
