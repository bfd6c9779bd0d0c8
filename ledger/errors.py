"""One exception hierarchy for the domain; each error carries a stable `code`.

The ledger knows nothing of HTTP: `api/errors.py` maps each kind of error to a status code.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every domain error; `code` is stable and safe to show to API clients."""

    code = "ledger_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(LedgerError):
    """What was asked is malformed or out of range."""

    code = "validation_failed"


class NotFound(LedgerError):
    """No such account, plan, conversation..."""

    code = "not_found"


class Conflict(LedgerError):
    """The state of things does not allow it now (an open plan already, not waiting for approval...)."""

    code = "conflict"


class OfferNotAllowed(LedgerError):
    """The policy does not allow what was asked; `details` names the nearest allowed offer."""

    code = "offer_not_allowed"


class PolicyError(LedgerError):
    """policy.yml is invalid: the bank's rules cannot be applied."""

    code = "policy_invalid"


class WrongChannel(NotFound):
    """The conversation belongs to another channel (an SMS conversation addressed from the web):
    one channel never speaks, or listens, for another."""

    code = "not_found"


class DuplicateMessage(Conflict):
    """The provider sent this message before (the same external id): it was processed once already."""

    code = "duplicate_message"


class MessageBlocked(ValidationFailed):
    """The output guard refused a message (`details["reason"]` says why): nothing stored or sent."""

    code = "message_blocked"


class NoProvenPhone(ValidationFailed):
    """An SMS would go to a number the conversation's channel never proved: nothing stored or sent."""

    code = "no_proven_phone"
