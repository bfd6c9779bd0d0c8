"""Entity values normalised as the actions read them (docs/nlu.md)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.dates import resolve_date
from bot.extract import extract
from bot.normalize import normalize

TODAY = date(2026, 11, 29)  # a Sunday


def values(text: str) -> list[tuple[str, str]]:
    return [(e["entity"], e["value"]) for e in extract(normalize(text), TODAY)]


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("三千五", "3500"),
        ("1.2万", "12000"),
        ("两千块", "2000"),
        ("3.5k", "3500"),
        ("¥1,500.00", "1500"),
        ("我先还五百", "500"),
        ("一万二", "12000"),
        ("３０００元", "3000"),
        ("还 800", "800"),
        ("两万三千块钱", "23000"),
    ],
)
def test_amounts(text: str, amount: str) -> None:
    assert ("amount", amount) in values(text)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("分六期", "6"),
        ("36个月", "36"),
        ("半年", "6"),
        ("分12期", "12"),
        ("能不能分两年", "24"),
        ("分３期", "3"),
    ],
)
def test_installments(text: str, count: str) -> None:
    assert values(text) == [("installments", count)]


def test_last_four_labelled_and_phone() -> None:
    assert values("身份证后四位123x，卡号后四位5678") == [("id_last4", "123X"), ("card_last4", "5678")]
    assert values("+86 138-1234-5678") == [("phone", "13812345678")]
    assert values("尾号6002") == [("card_last4", "6002")]
    assert values("2345 6002") == [("last4", "2345"), ("last4", "6002")]


def test_numbers_that_are_not_amounts() -> None:
    assert values("25号") == [("date", "25号")]
    assert values("分6期") == [("installments", "6")]
    assert ("amount", "2026") not in values("2026年")


@pytest.mark.parametrize(
    ("span", "iso"),
    [
        ("今天", "2026-11-29"),
        ("明天", "2026-11-30"),
        ("后天", "2026-12-01"),
        ("下周五", "2026-12-04"),
        ("周五", "2026-12-04"),
        ("月底", "2026-11-30"),
        ("25号", "2026-12-25"),
        ("30号", "2026-11-30"),
        ("下个月15号", "2026-12-15"),
        ("12月3日", "2026-12-03"),
        ("1月5号", "2027-01-05"),
        ("三天后", "2026-12-02"),
        ("一周内", "2026-12-06"),
        ("下个月", "2026-12-29"),
        ("发工资", "2026-12-15"),
    ],
)
def test_dates_resolve_relative_to_today(span: str, iso: str) -> None:
    assert resolve_date(span, TODAY) is not None
    assert resolve_date(span, TODAY).isoformat() == iso  # type: ignore[union-attr]
    found = [e for e in extract(span, TODAY) if e["entity"] == "date"]
    assert found and found[0]["value"] == span and found[0]["additional_info"]["iso"] == iso


def test_date_and_amount_together() -> None:
    ents = extract("我下周五先还三千五", TODAY)
    assert [(e["entity"], e["value"]) for e in ents] == [("date", "下周五"), ("amount", "3500")]
    assert ents[0]["additional_info"] == {"iso": "2026-12-04"}


def test_vague_quantities_are_not_values() -> None:
    assert values("怎么比我刷的多了好几百") == []
    assert values("一个月收入只够生活") == []
    assert values("万一还不上怎么办") == []


def test_unpaid_wages_are_not_a_date() -> None:
    assert values("公司好几个月没发工资了") == []
    assert values("发工资就还") == [("date", "发工资")]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("我的手机是一三九一一一一零零零七", [("phone", "13911110007")]),
        ("身份证后四位幺三八X 卡号后四位六零零二", [("id_last4", "138X"), ("card_last4", "6002")]),
        ("手机号 139 1111 0007", [("phone", "13911110007")]),
        ("１３９－１１１１－０００７", [("phone", "13911110007")]),
        ("二三四五 六零零二", [("last4", "2345"), ("last4", "6002")]),
    ],
)
def test_digits_read_out_spaced_or_full_width(text: str, found: list[tuple[str, str]]) -> None:
    assert values(text) == found


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("明天下午三点打给我", "15:00"),
        ("周五下午两点半再联系我", "14:30"),
        ("今晚7点给我回个电话", "19:00"),
        ("中午12点半给我打电话", "12:30"),
        ("上午十点回电", "10:00"),
        ("3点打给我", "15:00"),  # a bare hour from 1 to 7 is the afternoon's
    ],
)
def test_a_typed_callback_time_beside_a_call_word(text: str, at: str) -> None:
    found = [e["value"] for e in extract(text, date(2026, 12, 7)) if e["entity"] == "callback_at"]
    assert found == [at]


@pytest.mark.parametrize("text", ["我明天下午三点还1000", "三点还款", "分三期"])
def test_a_time_without_a_call_word_is_no_callback(text: str) -> None:
    assert not [e for e in extract(text, date(2026, 12, 7)) if e["entity"] == "callback_at"]
