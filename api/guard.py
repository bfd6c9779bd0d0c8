"""The output guard: every bot and agent message passes here before it is stored or delivered.

Two rules from DOMAIN.md: no account detail to a conversation that has not verified the
holder, and no threatening or exaggerated phrasing to anyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Amounts and delinquency words reveal the debt to whoever holds the phone.
ACCOUNT_DETAIL = re.compile(
    r"\d[\d,]*(?:\.\d{1,2})?\s*元|逾期\s*\d+\s*天|已逾期|欠款\s*\d|本金\s*\d|违约金\s*\d|利息\s*\d"
)
FORBIDDEN = re.compile(
    r"坐牢|判刑|拘留|抓你|公安|警察|法院传票|黑名单|上门|曝光|通讯录|告诉你(?:的)?(?:家人|单位|同事)|借钱还|网贷|后果自负"
)
SAFE_UNVERIFIED = "为保护您的信息，需要先核实身份。请提供您在本行登记的手机号码。"


@dataclass(frozen=True)
class Verdict:
    text: str
    blocked: str | None  # why the original was replaced, or None


def check(text: str, verified: bool) -> Verdict:
    """Let a message through, or replace it with a safe one and say why."""
    if FORBIDDEN.search(_without_negations(text)):
        return Verdict("抱歉，这条消息未能发送，工作人员会尽快跟进。", "forbidden_phrase")
    if not verified and ACCOUNT_DETAIL.search(text):
        return Verdict(SAFE_UNVERIFIED, "unverified_detail")
    return Verdict(text, None)


def _without_negations(text: str) -> str:
    # "不会向您的家人透露" and "不会因此被认定" are reassurances, not threats.
    return re.sub(r"(?:不会|不得|不能|绝不|并不)[^，。,.!！?？]*", "", text)
