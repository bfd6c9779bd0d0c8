"""Money said as a range ("五六百", "500到600元"): one amount entity, the lower end as its value and
both ends kept, so a monthly figure can be read at its lower end and the reply can say so (issue 28)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.extract import extract

TODAY = date(2027, 3, 1)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("每个月五六百", "500", "600"),
        ("一个月能还一两千", "1000", "2000"),
        ("每月七八千块", "7000", "8000"),
        ("每个月500到600", "500", "600"),
        ("一个月1000-1500元", "1000", "1500"),
    ],
)
def test_a_range_is_one_amount_at_its_lower_end(text: str, low: str, high: str) -> None:
    [amount] = [e for e in extract(text, TODAY) if e["entity"] == "amount"]
    assert amount["value"] == low
    assert amount["additional_info"] == {"low": low, "high": high}


@pytest.mark.parametrize("text", ["10号到15号之间还", "分3到6期", "我先还500", "三四天后还"])
def test_what_is_not_a_money_range(text: str) -> None:
    assert not any("low" in (e.get("additional_info") or {}) for e in extract(text, TODAY))
