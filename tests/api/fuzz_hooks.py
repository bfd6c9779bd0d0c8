"""Schemathesis hooks for tests/api/test_schema_fuzz.py (loaded by `st run` via SCHEMATHESIS_HOOKS).

Two things the schema cannot say, told to the fuzzer here:
- who may call: the admin token, a supervisor's token (a fresh one for each logout, so the run's
  own token is not revoked), and for a web conversation the session token its creation returned
  (a chat logout takes one such token and no later case uses it);
- rules across fields that JSON Schema cannot state (the routes' docstrings and 422s say them):
  an account's minimum payment is at most its balance, a period's end is after its start, a
  campaign is not sent in the past, a statement is not dated after now and its charges not after
  it, a payment is made by now and not before the statement. Positive cases are brought inside them; negative cases are
  left as generated.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import schemathesis

from api.schemas.campaigns import WECHAT_TEMPLATES

ADMIN = os.environ.get("FUZZ_ADMIN_TOKEN", "")
AGENT_TOKENS: list[str] = json.loads(os.environ.get("FUZZ_AGENT_TOKENS", "[]"))
NOW = datetime.fromisoformat(os.environ.get("TEST_CLOCK", "2027-03-01T10:00:00+08:00"))
SESSIONS: dict[str, str] = {}  # conversation id -> session token, from POST /v1/chat/sessions
_spare = iter(AGENT_TOKENS[1:])


@schemathesis.auth()
class GatewayAuth:
    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        return ADMIN

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        path, method = case.operation.path, case.operation.method.upper()
        if path.startswith("/v1/chat/{conversation_id}"):
            token = SESSIONS.get(str((case.path_parameters or {}).get("conversation_id")), "")
        elif path == "/v1/chat/sessions/logout":  # ends a session: one nobody else uses from then on
            token = SESSIONS.pop(next(iter(SESSIONS)), "") if SESSIONS else data
        elif path == "/v1/agent/logout":
            token = next(_spare, AGENT_TOKENS[0])
        elif path.startswith("/v1/agent/") and not (path == "/v1/agent/login" and method == "POST"):
            token = AGENT_TOKENS[0]
        else:
            token = data
        if token:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.hook
def after_call(context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response) -> None:
    if case.operation.path == "/v1/chat/sessions" and response.status_code == 201:
        opened = response.json()
        SESSIONS[opened["conversation_id"]] = opened["session_token"]


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        return None


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _account(body: dict[str, Any]) -> None:
    balance = _money(body.get("statement_balance"))
    for field in ("minimum_payment", "paid_since_statement"):
        amount = _money(body.get(field))
        if balance is not None and amount is not None and amount > balance:
            body[field] = body["statement_balance"]
    start, due = _day(body.get("statement_date")), _day(body.get("due_date"))
    if start and due and due < start:
        body["statement_date"], body["due_date"] = body["due_date"], body["statement_date"]
        start, due = due, start
    if start and start > NOW.date():  # a statement is imported once issued (payments count from it)
        start = NOW.date()
        body["statement_date"] = start.isoformat()
        if due and due < start:
            body["due_date"] = start.isoformat()
    posted = _day(body.get("interest_start"))
    if posted and start and posted > start:  # charges are posted on or before their statement
        body["interest_start"] = start.isoformat()


def _batch(rows: list[Any]) -> None:
    """Each row within the rules, and an account_id given once (a second is a rejected row)."""
    seen: set[object] = set()
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            _account(row)
            if row.get("account_id") in seen:
                row["account_id"] = f"b{i}-{row['account_id']}"[:64]
            seen.add(row.get("account_id"))


def _payment(body: dict[str, Any]) -> None:
    # Made by now and on or after the statement date (which is on or before now): now itself is both.
    if isinstance(body.get("paid_at"), str):
        body["paid_at"] = NOW.isoformat()


def _campaign(body: dict[str, Any]) -> None:
    segment = body.get("segment")
    if isinstance(segment, dict):
        low, high = segment.get("min_overdue_days"), segment.get("max_overdue_days")
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            segment["min_overdue_days"], segment["max_overdue_days"] = high, low
    send_at = body.get("send_at")
    if isinstance(send_at, str):
        try:
            when = datetime.fromisoformat(send_at)
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None and when < NOW:
            body["send_at"] = (NOW + timedelta(days=1)).isoformat()
    if body.get("channel") == "wechat" and body.get("template") not in WECHAT_TEMPLATES:
        body["template"] = "reminder"


def _period(query: dict[str, Any]) -> None:
    start, end = _day(query.get("from")), _day(query.get("to"))
    tomorrow = NOW.date() + timedelta(days=1)
    if start is None and end is None:
        return
    if start is None:
        return  # `from` defaults to 30 days before `to`
    end = end or tomorrow
    if not (start < end and (end - start).days <= 366):
        query["to"] = (start + timedelta(days=1 + (end.toordinal() % 366))).isoformat()


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    label = case.operation.label
    if label == "POST /v1/accounts" and isinstance(case.body, dict):
        _account(case.body)
    elif label == "POST /v1/accounts:batch" and isinstance(case.body, list):
        _batch(case.body)
    elif label == "POST /v1/accounts/{account_id}/payments" and isinstance(case.body, dict):
        _payment(case.body)
    elif label == "POST /v1/campaigns" and isinstance(case.body, dict):
        _campaign(case.body)
    elif label == "GET /v1/kpis" and isinstance(case.query, dict):
        _period(case.query)
    return case
