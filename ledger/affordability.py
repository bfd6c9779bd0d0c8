"""Offers sized to the holder: what they can pay a month, a number of periods, or a payment in two parts.

Pure functions over a `negotiation.Situation`; the plans themselves come from `ledger/plans.py`, so
nothing here can build an offer the policy does not allow. What a holder can pay is never a promise:
these functions only propose, and the bot asks before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from ledger.negotiation import Situation, installment_offers, promise_ceiling
from ledger.plans import PlanOffer, installment_schedule, judge_promise, personalized_offer

AffordOutcome = Literal["on_hold", "settled", "clears_now", "installment", "personalized", "too_little"]


@dataclass(frozen=True)
class AffordabilityProposal:
    """The plan within policy whose instalment is closest to (and not above) `monthly`: fewest periods.

    `installment`/`personalized`: `offer` is that plan (a personalised one waits for a person's
    approval when the policy says so). `clears_now`: `monthly` covers everything owed, so no plan is
    needed. `too_little`: no plan within policy asks so little; `min_monthly` is the smallest
    instalment that one does (over `max_periods`), and only a person can go further.
    """

    outcome: AffordOutcome
    monthly: int
    offer: PlanOffer | None = None
    min_monthly: int = 0
    max_periods: int = 0
    outstanding: int = 0


def _largest_row(offer: PlanOffer) -> int:
    return max(r.amount for r in offer.schedule)


def _personalized_fitting(sit: Situation, today: date, monthly: int) -> tuple[PlanOffer | None, int]:
    """The shortest personalised plan whose rows all fit `monthly`; else None and the smallest row possible."""
    rate = sit.agreements.personalized_fee_rate
    base_mode = sit.agreements.instalment_fee_base
    base = sit.owed.fee_base(base_mode)
    smallest = 0
    for periods in range(1, sit.rules.personalized_max_periods + 1):
        _, rows = installment_schedule(sit.owed.total, periods, rate, today, base)
        smallest = max(r.amount for r in rows)
        if smallest <= monthly:
            return personalized_offer(sit.owed, periods, sit.rules, today, rate, base_mode), smallest
    return None, smallest


def size_to_monthly(sit: Situation, today: date, monthly: int) -> AffordabilityProposal:
    """The instalment or personalised plan within policy closest to what the holder can pay a month.

    Closest means the fewest periods whose instalments all fit `monthly` (the instalment nearest the
    figure from below); on a tie the standard instalment wins, since it needs nobody's approval.
    """
    if sit.on_hold:
        return AffordabilityProposal("on_hold", monthly)
    if sit.outstanding <= 0:
        return AffordabilityProposal("settled", monthly)
    if monthly >= sit.outstanding:
        return AffordabilityProposal("clears_now", monthly, outstanding=sit.outstanding)
    offers = installment_offers(sit, today)
    fitting = [o for o in offers if _largest_row(o) <= monthly]
    smallest = min((_largest_row(o) for o in offers), default=0)
    longest = max(sit.rules.installment_fee_rates, default=0) if sit.rules.allows("installment") else 0
    if sit.rules.allows("personalized"):
        personal, smallest_personal = _personalized_fitting(sit, today, monthly)
        fitting += [personal] if personal is not None else []
        smallest = min(smallest, smallest_personal) if smallest else smallest_personal
        longest = max(longest, sit.rules.personalized_max_periods)
    # Fewest periods that fit (the instalment nearest the figure); a standard plan before a personalised one.
    best = min(fitting, key=lambda o: (o.periods, o.type != "installment"), default=None)
    if best is None:
        return AffordabilityProposal("too_little", monthly, min_monthly=smallest, max_periods=longest)
    kind: AffordOutcome = "personalized" if best.type == "personalized" else "installment"
    return AffordabilityProposal(kind, monthly, offer=best)


PeriodsOutcome = Literal["on_hold", "settled", "installment", "personalized", "nearest", "none"]


@dataclass(frozen=True)
class PeriodsProposal:
    """A plan over the periods asked for: a standard instalment, else a personalised plan when the
    policy allows that many periods for one (a person approves it), else the nearest standard one."""

    outcome: PeriodsOutcome
    requested: int
    offer: PlanOffer | None = None
    allowed_periods: tuple[int, ...] = ()


def plan_for_periods(sit: Situation, today: date, periods: int) -> PeriodsProposal:
    """What to offer a holder who names a number of periods ("分60期")."""
    if sit.on_hold:
        return PeriodsProposal("on_hold", periods)
    if sit.outstanding <= 0:
        return PeriodsProposal("settled", periods)
    standard = {o.periods: o for o in installment_offers(sit, today)}
    if periods in standard:
        return PeriodsProposal("installment", periods, standard[periods])
    if sit.rules.allows("personalized") and 1 <= periods <= sit.rules.personalized_max_periods:
        rate = sit.agreements.personalized_fee_rate
        offer = personalized_offer(sit.owed, periods, sit.rules, today, rate, sit.agreements.instalment_fee_base)
        return PeriodsProposal("personalized", periods, offer)
    if not standard:
        return PeriodsProposal("none", periods)
    nearest = min(standard, key=lambda p: (abs(p - periods), -p))
    return PeriodsProposal("nearest", periods, standard[nearest], tuple(sorted(standard)))


@dataclass(frozen=True)
class Part:
    """One promise of an arrangement: an amount by a date."""

    amount: int
    due: date


TwoPartOutcome = Literal["settled", "ok", "one_is_enough", "past", "too_late", "too_much", "order"]


@dataclass(frozen=True)
class TwoPartProposal:
    """A payment now (or on a date) and the rest later, as two promises.

    `ok`: `parts` are the two promises to confirm; the second is what is left of the amount that
    clears the overdue on its date. `one_is_enough`: the first part already clears it (`parts` holds
    that one). `past`/`too_late`: a date outside the promise window (`latest` names the last day).
    `too_much`: the first part is more than is owed. `order`: the rest falls before the first part.
    """

    outcome: TwoPartOutcome
    parts: tuple[Part, ...] = ()
    latest: date | None = None


def propose_two_part(
    sit: Situation, today: date, first_amount: int, first_due: date, rest_due: date, ahead: int = 0
) -> TwoPartProposal:
    """ "先还500，剩下的10号还清": the first part, then the rest of what clears the overdue by `rest_due`.

    `ahead`: money already promised and not yet paid (earlier open promises), not asked for twice.
    """
    target = sit.amount_due_on(rest_due) if rest_due >= today else sit.amount_due
    target = (target or sit.outstanding) - ahead
    if target <= 0:
        return TwoPartProposal("settled")
    if rest_due < first_due:
        return TwoPartProposal("order")
    for due in (first_due, rest_due):
        verdict = judge_promise(max(first_amount, 1), due, today, promise_ceiling(sit, due, today), sit.rules)
        if verdict.problem in ("past", "too_late"):
            return TwoPartProposal(verdict.problem, latest=verdict.latest)
    if first_amount > promise_ceiling(sit, first_due, today) - ahead:
        return TwoPartProposal("too_much")
    if first_amount >= target:
        return TwoPartProposal("one_is_enough", (Part(first_amount, first_due),))
    return TwoPartProposal("ok", (Part(first_amount, first_due), Part(target - first_amount, rest_due)))


def rest_after(sit: Situation, today: date, due: date, promised: int) -> int:
    """ "剩下的我周五还": what is left of the amount that clears the overdue on `due` once `promised`
    (open promises, not yet paid) is paid; 0 when nothing is left."""
    target = sit.amount_due_on(due) if due >= today else sit.amount_due
    return max(0, (target or sit.outstanding) - promised)
