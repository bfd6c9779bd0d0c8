"""The bank's negotiation and contact policy: a YAML file validated at start-up.

Every rule a bank sets differently lives in `policy.yml`; code reads this model.
A bad file fails with a message naming the line (see `load_policy`).
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ledger.errors import PolicyError

Bucket = Literal["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+"]
BUCKETS: tuple[Bucket, ...] = ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+")
Offer = Literal["full", "minimum", "installment", "deferment", "personalized", "fee_waiver"]
InterestMode = Literal["full_balance", "unpaid_only"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Institution(_Strict):
    name: str
    short_name: str
    hotline: str
    app_name: str


class LateFeePolicy(_Strict):
    rate: Decimal = Field(ge=0, le=Decimal("0.2"))
    escalated_rate: Decimal = Field(ge=0, le=Decimal("0.2"))
    escalate_after_misses: int = Field(ge=1)
    minimum_fen: int = Field(ge=0)


class FeePolicy(_Strict):
    interest_mode: InterestMode
    daily_interest_rate: Decimal = Field(gt=0, le=Decimal("0.001"))
    late_fee: LateFeePolicy
    # 容时容差 (PBoC 银发〔2016〕111号, from 2017; see docs/money.md): a payment this many days after a
    # due date still counts as on time, and a shortfall of at most `tolerance` yuan counts as paid.
    grace_days: int = Field(default=3, ge=0, le=15)
    tolerance: Decimal = Field(default=Decimal("10.00"), ge=0, le=Decimal("100"), decimal_places=2)

    @property
    def tolerance_fen(self) -> int:
        return int(self.tolerance * 100)


class BucketPolicy(_Strict):
    offers: tuple[Offer, ...]
    installment_fee_rates: dict[int, Decimal] = Field(default_factory=dict)
    deferment_max_days: int = Field(default=0, ge=0, le=90)
    promise_max_days: int = Field(default=7, ge=1, le=60)
    personalized_max_periods: int = Field(default=60, ge=1, le=60)
    fee_waiver_max_ratio: Decimal = Field(default=Decimal(0), ge=0, le=1)
    needs_approval: tuple[Offer, ...] = ()

    @field_validator("installment_fee_rates")
    @classmethod
    def _periods_in_range(cls, rates: dict[int, Decimal]) -> dict[int, Decimal]:
        for periods, rate in rates.items():
            if not 2 <= periods <= 60:
                raise ValueError(f"installment periods must be 2..60 (5 years at most), got {periods}")
            if not Decimal(0) <= rate <= Decimal("0.02"):
                raise ValueError(f"fee rate per period must be 0..0.02, got {rate}")
        return rates

    @model_validator(mode="after")
    def _offers_have_terms(self) -> BucketPolicy:
        if "installment" in self.offers and not self.installment_fee_rates:
            raise ValueError("installment is offered but installment_fee_rates is empty")
        if "deferment" in self.offers and self.deferment_max_days == 0:
            raise ValueError("deferment is offered but deferment_max_days is 0")
        return self

    def allows(self, offer: Offer) -> bool:
        return offer in self.offers

    def approval_needed(self, offer: Offer) -> bool:
        return offer in self.needs_approval


class ContactPolicy(_Strict):
    window_start: time
    window_end: time
    sms_per_day: int = Field(ge=0, le=6)  # per person (phone), across their cards and written channels
    sms_per_7_days: int = Field(ge=0, le=42)
    # A message within this many minutes of the person's own message is a reply, not a contact attempt.
    reply_window_minutes: int = Field(default=60, ge=0, le=24 * 60)
    # Reminders pause this long after a verified holder tells us of a hardship (illness, job loss).
    hardship_pause_days: int = Field(default=30, ge=0, le=180)

    # CBA 2026: no outbound contact 22:00-08:00 without consent; the policy may only narrow it.
    @field_validator("window_start")
    @classmethod
    def _not_before_eight(cls, v: time) -> time:
        if v < time(8):
            raise ValueError("the contact window cannot open before 08:00")
        return v

    @field_validator("window_end")
    @classmethod
    def _not_after_ten(cls, v: time) -> time:
        if v > time(22):
            raise ValueError("the contact window cannot close after 22:00")
        return v

    @model_validator(mode="after")
    def _starts_before_it_ends(self) -> ContactPolicy:
        if self.window_start >= self.window_end:
            raise ValueError("window_start must be before window_end")
        return self


class CostPolicy(_Strict):
    """For the cost-per-account KPI."""

    agent_minute_fen: int = Field(default=200, ge=0)
    sms_fen: int = Field(default=5, ge=0)


DutyDays = Literal["weekdays", "weekends", "all"]


class DutyHours(_Strict):
    """When a team's agents answer: on these days, from `start` to `end` (local time)."""

    days: DutyDays = "all"
    start: time
    end: time

    @model_validator(mode="after")
    def _starts_before_it_ends(self) -> DutyHours:
        if self.start >= self.end:
            raise ValueError("duty hours: start must be before end")
        return self


_DEFAULT_DUTY: dict[str, tuple[DutyHours, ...]] = {"collections": (DutyHours(days="all", start=time(9), end=time(21)),)}


class HandoffPolicy(_Strict):
    """What the holder is told about waiting for a person, who is on duty, how long a holder may wait."""

    expected_wait_minutes: int = Field(default=10, ge=1, le=24 * 60)  # one conversation's share of an agent
    fallbacks_before_handoff: int = Field(default=3, ge=1, le=10)
    # Working hours per team; a handoff outside them (or with nobody present) is not parked.
    duty_hours: dict[str, tuple[DutyHours, ...]] = Field(default_factory=lambda: dict(_DEFAULT_DUTY))
    capacity_per_agent: int = Field(default=3, ge=1, le=50)  # waiting holders per agent present
    max_wait_minutes: int = Field(default=15, ge=1, le=24 * 60)  # then the bot takes the holder back
    callback_grace_minutes: int = Field(default=30, ge=0, le=24 * 60)  # a callback claimed by then is kept
    callback_slots: int = Field(default=3, ge=1, le=6)  # callback times offered to the holder

    @field_validator("duty_hours")
    @classmethod
    def _some_team(cls, teams: dict[str, tuple[DutyHours, ...]]) -> dict[str, tuple[DutyHours, ...]]:
        if not teams or not any(teams.values()):
            raise ValueError("duty_hours needs at least one team with hours")
        return teams


class AgreementPolicy(_Strict):
    """What an agreed plan, deferment or promise does to the money, and when it is missed or broken."""

    # While a plan is active, on the amount inside it: "stop" (the plan fee is the only cost) or
    # "continue" (interest keeps running on the principal still unpaid; a 违约金 on a missed instalment).
    interest_during_plan: Literal["stop", "continue"] = "stop"
    late_fees_during_plan: Literal["stop", "continue"] = "stop"
    # What the instalment fee is charged on: the principal only (interest and 违约金 to date are carried
    # into the plan without a fee, PBoC 2016: no interest on 违约金) or everything outstanding.
    instalment_fee_base: Literal["principal", "outstanding"] = "principal"
    grace_days: int = Field(default=3, ge=0, le=15)  # an instalment unpaid this long after its date is missed
    misses_allowed: int = Field(default=1, ge=0, le=12)  # more missed instalments at once and the plan breaks
    # During a deferment: no new 违约金 ("none") or the cycle's 违约金 as usual ("as_usual"); interest runs.
    deferment_late_fees: Literal["none", "as_usual"] = "none"
    # Paying a plan off early: the fees of instalments not yet due are waived or still charged.
    early_payoff_unearned_fees: Literal["waived", "charged"] = "waived"
    personalized_fee_rate: Decimal = Field(default=Decimal("0.005"), ge=0, le=Decimal("0.02"))

    @property
    def misses_that_break(self) -> int:
        """How many instalments missed at once break a plan."""
        return self.misses_allowed + 1


class ApprovalPolicy(_Strict):
    """Who approves a plan that waits for a person: a supervisor always; an agent holding the
    conversation alone only up to these limits (0 periods: only supervisors approve)."""

    agent_max_periods: int = Field(default=12, ge=0, le=60)
    agent_max_principal_fen: int = Field(default=2_000_000, ge=0, le=10**12)


class Policy(_Strict):
    version: Literal[1]
    institution: Institution
    fees: FeePolicy
    contact: ContactPolicy
    buckets: dict[Bucket, BucketPolicy]
    costs: CostPolicy = CostPolicy()
    handoff: HandoffPolicy = HandoffPolicy()
    agreements: AgreementPolicy = AgreementPolicy()
    approval: ApprovalPolicy = ApprovalPolicy()

    @field_validator("buckets")
    @classmethod
    def _every_bucket(cls, buckets: dict[str, BucketPolicy]) -> dict[str, BucketPolicy]:
        missing = [b for b in BUCKETS if b not in buckets]
        if missing:
            raise ValueError(f"buckets missing: {', '.join(missing)}")
        return buckets

    def for_bucket(self, bucket: Bucket) -> BucketPolicy:
        return self.buckets[bucket]


def _line_index(node: yaml.Node, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each YAML path (keys as strings) to its 1-based line."""
    index = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            index.update(_line_index(value, (*path, str(key.value))))
            index[(*path, str(key.value))] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index.update(_line_index(item, (*path, str(i))))
    return index


def _line_of(index: dict[tuple[str, ...], int], loc: tuple[Any, ...]) -> int:
    parts = tuple(str(p) for p in loc)
    while parts and parts not in index:
        parts = parts[:-1]
    return index.get(parts, 1)


def parse_policy(text: str, source: str = "policy.yml") -> Policy:
    """Validate policy text; raise PolicyError naming the file, line and field of each problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise PolicyError(f"{source}:{line}: not valid YAML: {exc}") from None
    if node is None or not isinstance(data, dict):
        raise PolicyError(f"{source}:1: the policy must be a mapping")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        index = _line_index(node)
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            field = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"{source}:{_line_of(index, loc)}: {field}: {err['msg']}")
        raise PolicyError("invalid policy\n" + "\n".join(problems), problems=problems) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file."""
    p = Path(path)
    return parse_policy(p.read_text(encoding="utf-8"), source=str(p))


@lru_cache(maxsize=4)
def cached_policy(path: str) -> Policy:
    return load_policy(path)
