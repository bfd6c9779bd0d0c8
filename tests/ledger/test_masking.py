"""Verification answers are masked wherever they stand alone, half- or full-width, for any holder."""

from __future__ import annotations

import re

from ledger.masking import mask_values


def test_answers_are_masked_only_where_they_stand_alone() -> None:
    said = "身份证后四位345x，卡号后四位５６７８，另一张卡12345678，编号12345"
    assert (
        mask_values(said, ["345X", "5678", "1234"]) == "身份证后四位****，卡号后四位****，另一张卡12345678，编号12345"
    )


def test_other_groups_of_four_are_left_alone() -> None:
    assert mask_values("验证码 4321，日期 2027", ["1234"]) == "验证码 4321，日期 2027"
    assert mask_values("没有答案", []) == "没有答案"
    assert mask_values("不是四位 12", ["12", "abcd"]) == "不是四位 12"


def test_masking_many_holders_leaves_re_s_cache_as_it_was() -> None:
    """One pattern for everyone: a new holder's answers compile nothing (they used to fill re's
    cache, a slow growth of the gateway's memory in the soak)."""
    mask_values("1000", ["1000"])
    before = len(re._cache)  # type: ignore[attr-defined]
    for n in range(2000, 2600):
        assert mask_values(f"后四位{n}", [str(n)]) == "后四位****"
    assert len(re._cache) == before  # type: ignore[attr-defined]
