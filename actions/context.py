"""What every action needs: settings, policy, clock and a database transaction off the event loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from rasa_sdk.events import EventType, SlotSet
from sqlalchemy.orm import Session

from ledger import templates
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.money import fen_to_text
from ledger.policy import Policy, cached_policy
from settings import get_settings

T = TypeVar("T")
log = logging.getLogger("actions")


def policy() -> Policy:
    return cached_policy(str(get_settings().policy_path))


def clock() -> Clock:
    return process_clock(get_settings().app_timezone)


_database: Database | None = None


def database() -> Database:
    """The action server's Database: one per worker process, built on first use (rasa-sdk gives
    actions no start-up hook) and built again only if DATABASE_URL changes (tests)."""
    global _database
    url = get_settings().database_url
    if _database is None or _database.url != url:
        if _database is not None:
            _database.dispose()
        _database = Database(url)
    return _database


def dispose_database() -> None:
    """Close the worker's connections (the action server's shutdown)."""
    global _database
    if _database is not None:
        _database.dispose()
        _database = None


async def in_transaction(work: Callable[[Session], T], readonly: bool = False) -> T:
    """Run blocking database work in a worker thread, in one transaction.

    `readonly=True` when the work only reads: it then never queues behind a writer.
    """
    return await database().run(work, readonly=readonly)


def cues(tracker: Any) -> frozenset[str]:
    """What the NLU found the latest message says beyond its intent (bot/keywords.yml `cues`): the
    actions decide from these names, never from the words."""
    return frozenset(tracker.latest_message.get("cues") or ())


def institution_vars() -> dict[str, str]:
    inst = policy().institution
    return {"institution": inst.name, "hotline": inst.hotline, "app_name": inst.app_name}


def money(fen: int) -> str:
    return fen_to_text(fen)


def chinese_date(day: date) -> str:
    """2026-12-30 -> '12月30日', as people write it."""
    return f"{day.month}月{day.day}日"


def percent(rate: Decimal, places: int | None = None) -> str:
    """0.1303 -> '13.03%'; 0.0005 -> '0.05%'."""
    value = rate * 100
    text = f"{value:.{places}f}" if places is not None else f"{value.normalize():f}"
    return f"{text}%"


def render(name: str, **values: Any) -> str:
    """Chat copy that lists several items (one offer a line) lives in templates/chat/."""
    return templates.render("chat", name, **values)


def wait_minutes() -> int:
    """What the holder is told about waiting for a person (policy.yml: handoff)."""
    return policy().handoff.expected_wait_minutes


# The buttons that offer the other ways forward (their payloads are intents, unpacked by bot/channel.py).
SEE_INSTALLMENTS = {"title": "看看分期", "payload": "/request_installment"}
ASK_DEFERMENT = {"title": "申请延期", "payload": "/request_deferment"}
TO_A_PERSON = {"title": "转人工", "payload": "/request_human"}


# The answers every account action gives when it cannot go on; keyed by the reason.
REFUSALS = {"unverified": "utter_need_verification", "on_hold": "utter_on_hold", "settled": "utter_debt_settled"}


def refused(dispatcher: Any, kind: str) -> bool:
    """Say why nothing more can be done, if `kind` is one of the standard reasons."""
    response = REFUSALS.get(kind)
    if response:
        dispatcher.utter_message(response=response)
    return response is not None


# A negotiation asked about before verifying ("信用卡可以协商延期还款吗"): the general answer, then the
# way in; what was wanted is kept (slot `wanted`) and offered as a button once verified.
WANTED_AFTER_VERIFYING = {
    "deferment": ("utter_can_defer", {"title": "继续办理延期还款", "payload": "/request_deferment"}),
    "installment": ("utter_can_instal", {"title": "继续办理分期还款", "payload": "/request_installment"}),
}


def answer_then_verify(dispatcher: Any, wanted: str) -> list[EventType]:
    """The process question answered in general (nothing of any account), verification asked, and
    the request kept for after it."""
    dispatcher.utter_message(response=WANTED_AFTER_VERIFYING[wanted][0])
    dispatcher.utter_message(response="utter_need_verification")
    return [SlotSet("wanted", wanted)]


def waiver_explanation(said: frozenset[str]) -> str | None:
    """停息挂账 and 只还本金 are named asks: say what they are before what can be done."""
    if "stop_interest" in said:
        return "utter_explain_stop_interest"
    if "principal_only" in said:
        return "utter_explain_principal_only"
    return None
