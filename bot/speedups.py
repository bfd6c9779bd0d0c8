"""A measured fix for Rasa 3.6's hot path (docs/performance.md).

Rasa validates every action-server response with `jsonschema.validate`, which re-checks the
constant response schema against the JSON Schema metaschema on every call: 57% of the Rasa
server's CPU under load in our profile. The same validation against a validator built once
keeps the behaviour (the same best-matching error, the same message) without that cost.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    """Patch RemoteAction's response validation once per process; idempotent."""
    global _installed
    if _installed:
        return
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    spec = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(spec)
    cls.check_schema(spec)  # once, instead of on every response
    validator = cls(spec)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        error = exceptions.best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            ". Failed to validate Action server response from API, make sure your response from the Action "
            f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    _installed = True
