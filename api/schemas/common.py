"""What every part of the API shares: money, phone numbers, identifiers and the error body.

A constraint the API enforces is written here once, as a type, so `/openapi.json` states it and
the request is refused (422) the same way whichever route takes it.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field, WithJsonSchema

from ledger.money import fen_to_yuan, yuan_to_fen

MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"
# More than zero, without a lookahead (pydantic's regex engine has none): a whole part that does
# not start with 0, or 0 and a fraction that is not zero.
POSITIVE_MONEY_PATTERN = r"^([1-9][0-9]{0,11}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"
MoneyIn = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["1234.50"], description="yuan, two places at most")]
PositiveMoneyIn = Annotated[
    str, Field(pattern=POSITIVE_MONEY_PATTERN, examples=["500.00"], description="yuan, more than zero")
]
Money = Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{2}$", examples=["1234.50"])]
Rate = Annotated[str, Field(examples=["0.0005"], description="a decimal fraction")]


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")  # not true/false, not "5": what the schema says
    return value


# After an int's bounds in Annotated[...] (before them, pydantic leaves the bounds out of the schema).
JSON_NUMBER = BeforeValidator(_json_number)


def rate_in(maximum: str, pattern: str) -> Any:
    """A rate from 0 to `maximum`, as a JSON number or a decimal string; a string must match
    `pattern` (which says the same range), so what the schema shows is what is accepted."""

    def plain(value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(pattern, value):
            raise ValueError(f"must be a decimal from 0 to {maximum}")
        return value

    return Annotated[
        Decimal,
        Field(ge=0, le=Decimal(maximum)),
        BeforeValidator(plain),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", "minimum": 0, "maximum": float(maximum)},
                    {"type": "string", "pattern": pattern},
                ]
            }
        ),
    ]


# 0 to 0.001 and 0 to 0.2, digit by digit: 0.000..., 0.001(0...), 0(.0(0)); 0.0.../0.1..., 0.2(0...).
DailyRateIn = rate_in("0.001", r"^0+(\.(000[0-9]*|0010*|0{0,2}))?$")
LateFeeRateIn = rate_in("0.2", r"^0+(\.([01][0-9]*|20*)?)?$")

# Dates and times the API takes lie in 2000-2099: a statement, a payment, a campaign or a report
# outside them is a typo, and the ledger's date arithmetic (grace days, quiet hours, time zones)
# runs off the calendar's ends with years 1 or 9999.
_DAY = r"20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DATE_PATTERN = rf"^{_DAY}$"
DATETIME_PATTERN = (
    rf"^{_DAY}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{{1,6}})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


def _written_as(pattern: str, what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, date):  # already parsed (in-process callers)
            return value
        if not isinstance(value, str) or not re.match(pattern, value):
            raise ValueError(f"must be {what} in the years 2000-2099")
        return value

    return BeforeValidator(check)


DateIn = Annotated[
    date,
    _written_as(DATE_PATTERN, "a date YYYY-MM-DD"),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]
AwareDatetimeIn = Annotated[
    AwareDatetime,
    _written_as(DATETIME_PATTERN, "an ISO 8601 time with its UTC offset"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATETIME_PATTERN}),
]

# A mainland mobile number as people and providers write it: an optional +86/0086/86 prefix,
# optional single spaces or dashes between the 3-4-4 groups. Stored as its 11 digits.
PHONE_PATTERN = r"^(\+86|0086|86)?[ -]?1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}$"
PHONE_PREFIXES = ("+86", "0086", "86")


def normalise_phone(raw: str) -> str:
    digits = "".join(ch for ch in raw if ch.isdigit() or ch == "+")
    for prefix in PHONE_PREFIXES:
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            digits = digits[len(prefix) :]
            break
    if len(digits) != 11 or not digits.startswith("1") or not digits.isdigit():
        raise ValueError("phone must be an 11-digit mainland mobile number")
    return digits


PhoneIn = Annotated[
    str,
    Field(pattern=PHONE_PATTERN, examples=["13800138000", "+86 138-0013-8000"]),
    AfterValidator(normalise_phone),
]
# A time as the API writes it: datetime.isoformat() of an aware datetime (offset always there).
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-04-05T10:00:00+08:00"])]
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
ConversationIdStr = Annotated[str, Field(pattern=CONVERSATION_ID_PATTERN)]
# The same, but never an SMS conversation ("sms-..."): those belong to the SMS channel. Spelt out
# letter by letter because the validator's regex engine has no lookahead.
WEB_CONVERSATION_ID_PATTERN = (
    r"^([A-Za-rt-z0-9_-][A-Za-z0-9_-]{7,63}"
    r"|s([A-Za-ln-z0-9_-][A-Za-z0-9_-]{6,62}"
    r"|m([A-Za-rt-z0-9_-][A-Za-z0-9_-]{5,61}|s[A-Za-z0-9_][A-Za-z0-9_-]{4,60})))$"
)
# What survives clean_text (api/chat/text.py): at least one character that is not a space or a control.
VISIBLE_TEXT_PATTERN = r"[^\s\x00-\x1f\x7f-\x9f]"
MAX_MESSAGE_CHARS = 1000  # the default of MAX_MESSAGE_CHARS (settings/__init__.py)


class ErrorDetail(BaseModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["not_found"])
    message: str
    details: dict[str, Any]


class ErrorBody(BaseModel):
    """Every 4xx and 5xx: a stable snake_case code, a message for people, details for programs."""

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "malformed_json: the body is not (UTF-8) JSON; bad_push: not a WeChat push",
    401: "unauthorized: no valid token for this call",
    403: "bad_signature, stale_push, replayed_push, link_invalid, approval_not_allowed, or a secret header missing",
    404: "not_found",
    409: "conflict: the state does not allow it (e.g. claimed by another agent)",
    413: "body_too_large: over 64 KiB",
    423: "account_locked: too many failed logins; try again later",
    422: "validation_failed (details.errors, or details.field), or a business rule's own code",
    429: "rate_limited",
    503: "service_unavailable: the database is away; try again after Retry-After seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting these error statuses with the error body."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


def money(fen: int) -> str:
    return fen_to_yuan(fen)


def to_fen(text: str) -> int:
    return yuan_to_fen(text)
