"""Several questions in one message are handled one by one, in order, at most three (issue 28)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.channel import questions_in

PARSES = {
    "我欠多少钱": {"intent": {"name": "ask_debt_amount", "confidence": 0.99}},
    "怎么还款": {"intent": {"name": "ask_repayment_method", "confidence": 0.97}},
    "逾期会影响征信吗": {
        "intent": {"name": "faq", "confidence": 0.94},
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/credit_report"}}},
    },
    "会坐牢吗": {
        "intent": {"name": "faq", "confidence": 0.9},
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/jail"}}},
    },
    "你好": {"intent": {"name": "greet", "confidence": 0.98}},
    "我失业了": {"intent": {"name": "hardship", "confidence": 0.8}},
}


class Agent:
    async def parse_message(self, text: str) -> dict[str, Any]:
        return PARSES.get(text, {"intent": {"name": "out_of_scope", "confidence": 0.3}})


def split(text: str) -> list[str]:
    whole = {"intent": {"name": "faq", "confidence": 0.9}}
    return [clause for clause, _ in asyncio.run(questions_in(Agent(), text, whole))]


def test_each_question_in_order() -> None:
    assert split("我欠多少钱 怎么还款 逾期会影响征信吗") == ["我欠多少钱", "怎么还款", "逾期会影响征信吗"]
    assert split("你好，我欠多少钱？怎么还款？") == ["我欠多少钱", "怎么还款"]


def test_at_most_three_and_each_question_once() -> None:
    assert split("我欠多少钱 怎么还款 逾期会影响征信吗 会坐牢吗") == ["我欠多少钱", "怎么还款", "逾期会影响征信吗"]
    assert split("我欠多少钱 我欠多少钱") == []


def test_a_story_with_a_question_stays_whole() -> None:
    assert split("我失业了 怎么还款") == []
    assert split("逾期会影响征信吗") == []


def test_a_message_that_is_not_a_question_is_not_split() -> None:
    story = {"intent": {"name": "hardship", "confidence": 0.8}}
    assert asyncio.run(questions_in(Agent(), "我欠多少钱 怎么还款", story)) == []
