"""The API's one error shape, {"error": {"code", "message", "details"}}, and the one table that maps
domain errors to HTTP statuses; no stack traces out."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.accounts import PaymentConflict
from ledger.agents import AccountLocked, LoginFailed
from ledger.approvals import ApprovalRefused
from ledger.compliance import ContactNotAllowed
from ledger.errors import (
    Conflict,
    DuplicateMessage,
    LedgerError,
    MessageBlocked,
    NoProvenPhone,
    NotFound,
    OfferNotAllowed,
    PolicyError,
    ValidationFailed,
    WrongChannel,
)

RETRY_AFTER_SECONDS = 5

log = logging.getLogger("api")

# The one place a domain error becomes an HTTP status: the most specific class listed wins
# (a subclass not listed takes its parent's status, e.g. OutsideServiceWindow is a Conflict).
STATUS_OF: dict[type[LedgerError], int] = {
    LoginFailed: 401,
    NotFound: 404,
    WrongChannel: 404,  # a conversation of another channel is, for this one, no conversation
    Conflict: 409,
    DuplicateMessage: 409,  # a provider's retry; the channel routes answer it as already done
    PaymentConflict: 409,  # code "payment_conflict": a payment reference reused with another amount
    ContactNotAllowed: 409,
    ValidationFailed: 422,
    MessageBlocked: 422,  # the output guard refused an agent's message; details.reason says why
    NoProvenPhone: 422,
    OfferNotAllowed: 422,
    AccountLocked: 423,
    ApprovalRefused: 403,
    PolicyError: 500,
    LedgerError: 400,
}


def status_for(exc: LedgerError) -> int:
    """The HTTP status of a domain error, from STATUS_OF."""
    return next(STATUS_OF[cls] for cls in type(exc).__mro__ if cls in STATUS_OF)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status)

    @app.exception_handler(LedgerError)
    async def _ledger(_: Request, exc: LedgerError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
        code, msg = (
            ("malformed_json", "the body is not valid JSON")
            if malformed
            else ("validation_failed", "the request is not valid")
        )
        return JSONResponse(error_body(code, msg, {"errors": errors}), status_code=422 if not malformed else 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "http_error"
        )
        message = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:  # e.g. bytes that are not UTF-8
            code, message = "malformed_json", "the body is not valid UTF-8 JSON"
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def _database_away(_: Request, exc: Exception) -> JSONResponse:
        # The database is stopped, refusing or cut off: nothing half written (each step is one
        # transaction), so the caller may simply try again. SMS providers retry on a non-2xx.
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(
            error_body("service_unavailable", "the service is briefly unavailable; please try again shortly"),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body("internal_error", "something went wrong; nothing was lost"), status_code=500)
