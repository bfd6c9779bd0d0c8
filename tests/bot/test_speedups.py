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
