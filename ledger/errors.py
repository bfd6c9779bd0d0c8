"""One exception hierarchy for the domain; each error carries a stable `code`."""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every domain error; `code` is stable and safe to show to API clients."""

    code = "ledger_error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(LedgerError):
    code = "validation_failed"
    status = 422


class NotFound(LedgerError):
    code = "not_found"
    status = 404


class Conflict(LedgerError):
    code = "conflict"
    status = 409


class OfferNotAllowed(LedgerError):
    """The policy does not allow what was asked; `details` names the nearest allowed offer."""

    code = "offer_not_allowed"
    status = 422


class PolicyError(LedgerError):
    code = "policy_invalid"
    status = 500
