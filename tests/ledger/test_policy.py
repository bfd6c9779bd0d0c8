"""A bad policy file fails with a message naming its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import PolicyError
from ledger.policy import parse_policy

SHIPPED = (Path(__file__).resolve().parents[2] / "policy.yml").read_text(encoding="utf-8")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_policy_is_valid() -> None:
    assert parse_policy(SHIPPED).for_bucket("M6+").allows("personalized")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('window_end: "21:00"', 'window_end: "23:30"', "contact.window_end"),
        ("interest_mode: full_balance", "interest_mode: compound", "fees.interest_mode"),
        ('daily_interest_rate: "0.0005"', 'daily_interest_rate: "five"', "fees.daily_interest_rate"),
        ("sms_per_day: 1", "sms_per_day: 9", "contact.sms_per_day"),
    ],
)
def test_bad_value_names_file_line_and_field(old: str, new: str, field: str) -> None:
    bad = SHIPPED.replace(old, new)
    with pytest.raises(PolicyError) as err:
        parse_policy(bad, source="policy.yml")
    assert f"policy.yml:{_line_of(bad, new.split(':')[0])}: {field}" in str(err.value)


def test_missing_bucket_and_broken_yaml() -> None:
    with pytest.raises(PolicyError, match="buckets missing: M6\\+"):
        parse_policy(SHIPPED.replace("  M6+: *late\n", ""))
    with pytest.raises(PolicyError, match=r"policy.yml:\d+: not valid YAML"):
        parse_policy("version: 1\nfees: [unclosed\n", source="policy.yml")
