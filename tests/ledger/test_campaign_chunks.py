"""A campaign read in pages of the book decides exactly as one read of the whole book: the same
accounts selected, the same decision and reason for each, the same send times, the same counts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ledger import accounts, conduct, negotiation
from ledger.campaigns import Segment, create_campaign, pages
from ledger.clock import Clock
from ledger.models import ContactAttempt
from ledger.policy import Policy
from tests.conftest import TZ
from tests.factories import record


def _phone() -> str:
    return f"137{uuid.uuid4().int % 10**8:08d}"


def _varied_book(session: Session, policy: Policy, clock: Clock) -> dict[str, list[str]]:
    """Forty cards on twelve people, each person's cards spread through the book (so their caps and
    person-wide facts cross pages), with every rule a campaign applies somewhere in it."""
    people = {name: _phone() for name in ("plain", "many", "opted", "suppressed", "wrong_number", "abroad",
                                           "deceased", "hardship", "sent_today", "sent_this_week", "arranged",
                                           "current")}  # fmt: skip
    names = list(people)
    cards: dict[str, list[str]] = {n: [] for n in names}
    for i in range(40):
        name = names[(i - i // 3 - 1) % len(names)] if i % 3 else "many"  # every third card is "many"
        overdue = 5 + (i * 7) % 120
        due = clock.today() - timedelta(days=overdue)
        rec = record(
            phone=people[name],
            due_date=due,
            statement_date=due - timedelta(days=20),
            paid_since_statement=100_000 if i % 11 == 0 else 0,  # minimum paid: not selected
            timezone="Europe/London" if name == "abroad" else "Asia/Shanghai",
        )
        if name == "current":
            rec = record(phone=people[name], due_date=clock.today() + timedelta(days=3), statement_date=clock.today())
        accounts.upsert_account(session, rec)
        cards[name].append(rec.account_id)
    conduct.set_preference(session, conduct.cardholder_of(session, cards["opted"][-1]), "sms", "opted_out", clock, "t")
    conduct.suppress_number(session, people["suppressed"], "sms", "opt_out", clock, "t")
    wrong = conduct.account_pk(session, cards["wrong_number"][0])
    conduct.suppress_number(session, people["wrong_number"], "all", "wrong_number", clock, "t", account_pk=wrong)
    conduct.place_hold(session, cards["deceased"][-1], "deceased", "家属告知", "t")
    conduct.place_hold(session, cards["plain"][0], "dispute", "盗刷", "t")
    conduct.record_hardship(session, cards["hardship"][0], "illness", "住院", 30, clock, "t")
    planned = cards["arranged"][0]
    sit = negotiation.situation(session, planned, policy, clock)
    offer = negotiation.offer_for(sit, "installment", clock.today(), 6)
    negotiation.create_plan(session, planned, offer, "chat", f"k-{planned}", clock)
    promised = cards["arranged"][-1]
    negotiation.create_promise(
        session, promised, 10_000, clock.today() + timedelta(days=3), "chat", f"p-{promised}", policy, clock
    )
    now = clock.now()
    sent = [(people["sent_today"], now - timedelta(hours=1))]
    sent += [(people["sent_this_week"], now - timedelta(days=d)) for d in (2, 4, 6)]
    session.execute(
        insert(ContactAttempt),
        [
            {"account_pk": None, "channel": "sms", "purpose": "agent", "to_phone": p, "status": "sent",
             "reason": "ok", "selected_at": at, "scheduled_at": at, "sent_at": at, "bucket": ""}
            for p, at in sent
        ],
    )  # fmt: skip
    session.flush()
    return cards


def _run(session: Session, policy: Policy, clock: Clock, chunk: int, **kw: Any) -> tuple[object, ...]:
    """One campaign in a savepoint, rolled back: its counts and every attempt it wrote."""
    nested = session.begin_nested()
    result = create_campaign(session, "c", Segment(), "reminder", kw.get("send_at"), policy.contact, clock, chunk=chunk)
    rows = session.execute(
        select(
            ContactAttempt.account_pk,
            ContactAttempt.to_phone,
            ContactAttempt.status,
            ContactAttempt.reason,
            ContactAttempt.scheduled_at,
            ContactAttempt.bucket,
        )
        .where(ContactAttempt.campaign_pk == result.campaign.id)
        .order_by(ContactAttempt.account_pk)
    ).all()
    nested.rollback()
    return result.selected, result.queued, dict(result.skipped), [tuple(r) for r in rows]


@pytest.mark.parametrize("send_at", [None, datetime(2026, 4, 5, 23, 30, tzinfo=TZ)])
def test_pages_of_seven_or_one_decide_as_the_whole_book(
    session: Session, policy: Policy, clock: Clock, send_at: datetime | None
) -> None:
    _varied_book(session, policy, clock)
    whole = _run(session, policy, clock, chunk=10**9, send_at=send_at)
    assert _run(session, policy, clock, chunk=7, send_at=send_at) == whole
    assert _run(session, policy, clock, chunk=1, send_at=send_at) == whole
    selected, queued, skipped, _ = whole
    # The book exercised what it was built for (the fixed clock is a Sunday, 10:00 in Shanghai).
    assert isinstance(skipped, dict)
    for reason in ("frequency_cap", "opted_out", "number_suppressed", "hold", "arrangement", "hardship"):
        assert skipped.get(reason, 0) > 0, reason
    assert skipped.get("quiet_hours", 0) > 0
    assert isinstance(selected, int) and isinstance(queued, int) and 0 < queued < selected


def test_a_persons_second_card_on_a_later_page_hits_the_cap(session: Session, policy: Policy, clock: Clock) -> None:
    cards = _varied_book(session, policy, clock)
    _, _, _, rows = _run(session, policy, clock, chunk=1)
    assert isinstance(rows, list)
    many = {conduct.account_pk(session, a) for a in cards["many"]}
    decided = [(status, reason) for pk, _, status, reason, *_ in rows if pk in many]
    assert decided[0] == ("queued", "ok")
    assert set(decided[1:]) == {("skipped", "frequency_cap")}


def test_pages_cover_the_book_once(session: Session, policy: Policy, clock: Clock) -> None:
    _varied_book(session, policy, clock)
    got = list(pages(session, 7))
    assert all(a.last == b.after for a, b in pairwise(got))
    assert got[0].after == 0
    assert all(p.after < p.last for p in got)


def test_an_empty_book_makes_an_empty_campaign(session: Session, policy: Policy) -> None:
    far = Clock.at(datetime(2020, 1, 6, 10, 0, tzinfo=TZ))  # before any statement in the test book
    result = create_campaign(session, "none", Segment(), "reminder", None, policy.contact, far, chunk=3)
    assert (result.selected, result.queued, sum(result.skipped.values())) == (0, 0, 0)
