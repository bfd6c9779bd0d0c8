"""The output guard: no account detail before verification, no threats to anyone."""

from __future__ import annotations

import pytest

from api import guard


@pytest.mark.parametrize("text", ["您已逾期45天，需还款2,145.00元。", "欠款 15645 元", "违约金150.00元"])
def test_account_detail_never_reaches_an_unverified_conversation(text: str) -> None:
    blocked = guard.check(text, verified=False)
    assert blocked.blocked == "unverified_detail" and "元" not in blocked.text
    assert guard.check(text, verified=True).blocked is None


@pytest.mark.parametrize(
    "text", ["再不还就让你坐牢", "我们会通知你的家人和单位，后果自负", "你将被列入黑名单", "明天上门找你"]
)
def test_threats_are_blocked_for_everyone(text: str) -> None:
    assert guard.check(text, verified=True).blocked == "forbidden_phrase"


def test_reassurance_is_not_a_threat() -> None:
    text = "单纯因为暂时困难还不上，不会因此被认定为恶意透支。我们也不会向您的家人、同事透露欠款信息。"
    assert guard.check(text, verified=False).blocked is None
