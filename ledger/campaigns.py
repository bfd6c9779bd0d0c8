"""Campaigns: select accounts, decide each send against the conduct rules, enqueue; send once.

The book is read in pages of accounts by primary key (keyset pagination): each page's
candidates, then the facts the rules need about those accounts and their phones in a few bulk
queries, then the page's decisions are written. Memory stays that of one page, whatever the size
of the book; a send queued on an earlier page counts against the person's caps on a later one
because it is read back from the table like any other planned contact. Every decision is stored
with its reason.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from ledger.accounts import audit
from ledger.clock import Clock
from ledger.compliance import (
    PERSON_WIDE_HOLDS,
    ContactFacts,
    Decision,
    counted_contacts,
    decide,
    decide_contact,
    person_facts,
)
from ledger.errors import NotFound, ValidationFailed
from ledger.fees import bucket_for
from ledger.models import (
    Account,
    Campaign,
    Cardholder,
    ContactAttempt,
    ContactPreference,
    Hardship,
    Hold,
    LedgerEntry,
    NumberSuppression,
    Plan,
    Promise,
    Statement,
)
from ledger.policy import BUCKETS, ContactPolicy
from ledger.sql import among, bulk_insert
from ledger.wechat import bound_cardholders, reminder_decision, reminder_openid

ACTIVE_ATTEMPT = ("queued", "sending", "sent")
SKIP_KEYS = ("opted_out", "quiet_hours", "frequency_cap", "hold", "arrangement", "number_suppressed", "hardship")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Segment:
    buckets: tuple[str, ...] = ()
    min_overdue_days: int | None = None
    max_overdue_days: int | None = None

    def __post_init__(self) -> None:
        unknown = [b for b in self.buckets if b not in BUCKETS]
        if unknown:
            raise ValidationFailed("unknown buckets", field="segment.buckets", unknown=unknown)
        lo, hi = self.min_overdue_days, self.max_overdue_days
        if lo is not None and hi is not None and lo > hi:
            raise ValidationFailed("min_overdue_days is above max_overdue_days", field="segment")

    def matches(self, overdue_days: int) -> bool:
        if overdue_days <= 0:
            return False  # campaigns are for overdue accounts
        if self.buckets and bucket_for(overdue_days) not in self.buckets:
            return False
        if self.min_overdue_days is not None and overdue_days < self.min_overdue_days:
            return False
        return self.max_overdue_days is None or overdue_days <= self.max_overdue_days


@dataclass
class CampaignResult:
    campaign: Campaign
    selected: int = 0
    queued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Candidate:
    account_pk: int
    cardholder_id: int
    phone: str
    timezone: str
    overdue_days: int


@dataclass(frozen=True)
class Page:
    """Accounts with primary keys in (after, last]: one chunk of the book."""

    after: int
    last: int


def pages(session: Session, size: int) -> Iterator[Page]:
    """The book in pages of `size` accounts by primary key (keyset pagination: each page starts where
    the last ended, so no page costs more than its own rows)."""
    after = 0
    while True:
        ids = select(Account.id).where(Account.id > after).order_by(Account.id)
        last = session.scalar(ids.offset(size - 1).limit(1))
        if last is None:
            last = session.scalar(select(func.max(Account.id)).where(Account.id > after))
            if last is None:
                return
        yield Page(after, last)
        after = last


def select_candidates(session: Session, segment: Segment, today: date, page: Page | None = None) -> list[Candidate]:
    """Overdue accounts in the segment (on `page`, or the whole book): minimum unpaid (statement
    payments plus posted ones) after the due date, in primary-key order."""
    posted_q = (
        select(LedgerEntry.account_pk, func.sum(LedgerEntry.amount).label("paid"))
        .join(Statement, Statement.account_pk == LedgerEntry.account_pk)
        .where(LedgerEntry.kind == "payment", LedgerEntry.effective_date >= Statement.statement_date)
    )
    query = (
        select(
            Account.id,
            Account.cardholder_id,
            Cardholder.phone,
            Cardholder.timezone,
            Statement.due_date,
            Statement.minimum_payment,
            Statement.paid_since_statement,
        )
        .join(Statement, Statement.account_pk == Account.id)
        .join(Cardholder, Cardholder.id == Account.cardholder_id)
        .where(Statement.due_date < today)
        .order_by(Account.id)
    )
    if page is not None:
        posted_q = posted_q.where(LedgerEntry.account_pk > page.after, LedgerEntry.account_pk <= page.last)
        query = query.where(Account.id > page.after, Account.id <= page.last)
    posted = posted_q.group_by(LedgerEntry.account_pk).subquery()
    rows = session.execute(
        query.add_columns(func.coalesce(posted.c.paid, 0)).outerjoin(posted, posted.c.account_pk == Account.id)
    )
    out = []
    for pk, holder, phone, tz, due, minimum, paid_since, paid_posted in rows:
        if paid_since + paid_posted >= minimum:
            continue
        overdue = (today - due).days
        if segment.matches(overdue):
            out.append(Candidate(pk, holder, phone, tz, overdue))
    return out


class _BulkFacts:
    """The facts `compliance.decide` needs for a page's candidates, read in a few queries (not one
    per account), per person: opt-outs and caps follow the phone, across all of its holder's cards,
    wherever in the book those cards are."""

    def __init__(self, session: Session, today: date, now: datetime, page: Page, candidates: list[Candidate]) -> None:
        phones = sorted({c.phone for c in candidates})
        in_page = (Hold.account_pk > page.after, Hold.account_pk <= page.last)
        # Every holder record of these phones, then their SMS preferences by holder id: two index
        # lookups (a join on the phone list lets PostgreSQL scan every preference of the book, per page).
        phone_of_holder = dict(
            session.execute(select(Cardholder.id, Cardholder.phone).where(among(session, Cardholder.phone, phones)))
            .tuples()
            .all()
        )
        self.opted_out = {
            phone_of_holder[h]
            for h in session.scalars(
                select(ContactPreference.cardholder_id).where(
                    among(session, ContactPreference.cardholder_id, list(phone_of_holder)),
                    ContactPreference.channel == "sms",
                    ContactPreference.value == "opted_out",
                )
            )
        }
        self.suppressed: set[tuple[str, int | None]] = {
            (phone, pk)
            for phone, pk in session.execute(
                select(NumberSuppression.phone, NumberSuppression.account_pk).where(
                    NumberSuppression.active,
                    NumberSuppression.channel.in_(("sms", "all")),
                    among(session, NumberSuppression.phone, phones),
                )
            )
        }
        self.holds: defaultdict[int, set[str]] = defaultdict(set)
        for pk, kind in session.execute(select(Hold.account_pk, Hold.kind).where(Hold.active, *in_page)):
            self.holds[pk].add(kind)
        self.person_holds: defaultdict[str, set[str]] = defaultdict(set)
        for kind, phone in session.execute(
            select(Hold.kind, Cardholder.phone)
            .join(Account, Account.id == Hold.account_pk)
            .join(Cardholder, Cardholder.id == Account.cardholder_id)
            .where(Hold.active, Hold.kind.in_(PERSON_WIDE_HOLDS), among(session, Cardholder.phone, phones))
        ):
            self.person_holds[phone].add(kind)
        self.arranged = set(
            session.scalars(
                select(Plan.account_pk).where(
                    Plan.status.in_(("active", "pending_approval")),
                    Plan.account_pk > page.after,
                    Plan.account_pk <= page.last,
                )
            )
        ) | set(
            session.scalars(
                select(Promise.account_pk).where(
                    Promise.status == "open",
                    Promise.due_date >= today,
                    Promise.account_pk > page.after,
                    Promise.account_pk <= page.last,
                )
            )
        )
        self.hardship = dict(
            session.execute(
                select(Hardship.phone, func.max(Hardship.pause_until))
                .where(among(session, Hardship.phone, phones))
                .group_by(Hardship.phone)
            )
            .tuples()
            .all()
        )
        # Sends this campaign queued on earlier pages are in the table already (same transaction).
        self.contacts = counted_contacts(session, phones, "sms", now, planned=True) if phones else {}

    def facts(self, c: Candidate) -> ContactFacts:
        return ContactFacts(
            timezone=c.timezone,
            opted_out=c.phone in self.opted_out,
            number_suppressed=(c.phone, None) in self.suppressed or (c.phone, c.account_pk) in self.suppressed,
            holds=frozenset(self.holds.get(c.account_pk, set()) | self.person_holds.get(c.phone, set())),
            has_arrangement=c.account_pk in self.arranged,
            hardship_until=self.hardship.get(c.phone),
            contacts=tuple(self.contacts.get(c.phone, ())),
        )

    def planned(self, c: Candidate, at: datetime) -> None:
        """A send just queued counts against the person's caps for the rest of this page (later
        pages read it back from the table)."""
        self.contacts.setdefault(c.phone, []).append(at)


def create_campaign(
    session: Session,
    name: str,
    segment: Segment,
    template: str,
    send_at: datetime | None,
    rules: ContactPolicy,
    clock: Clock,
    progress: Progress | None = None,
    chunk: int = 10_000,
    channel: str = "sms",
) -> CampaignResult:
    """Select, decide and enqueue in one transaction, `chunk` accounts at a time; returns the
    counts the API reports.

    Each queued send is decided again when its time comes (jobs/campaign_sender.py)."""
    now = clock.now()
    wanted = send_at or now
    if wanted.tzinfo is None:
        raise ValidationFailed("send_at needs a time zone offset", field="send_at")
    if wanted < now - timedelta(minutes=1):
        raise ValidationFailed("send_at is in the past", field="send_at")
    campaign = Campaign(
        campaign_id=f"cmp_{secrets.token_hex(6)}",
        name=name,
        segment={
            "buckets": list(segment.buckets),
            "min_overdue_days": segment.min_overdue_days,
            "max_overdue_days": segment.max_overdue_days,
        },
        template=template,
        send_at=wanted,
        selected=0,
    )
    session.add(campaign)
    session.flush()
    result = CampaignResult(campaign)
    # WeChat: holders who bound their WeChat by verifying there.
    bound = bound_cardholders(session) if channel == "wechat" else None
    stored = "call" if channel == "voice" else channel  # a voice campaign's attempts are calls
    for page in pages(session, chunk):
        candidates = select_candidates(session, segment, clock.today(), page)
        if bound is not None:
            candidates = [c for c in candidates if c.cardholder_id in bound]
        bulk = _BulkFacts(session, clock.today(), wanted, page, candidates)
        facts: Callable[[Candidate], ContactFacts] = bulk.facts
        planned = bulk.planned
        if channel == "wechat":
            facts = _without_phone_opt_outs(bulk)
        elif channel == "voice":  # calls: their own opt-outs, windows and caps (compliance channel "call")
            calls = _CallFacts(session, wanted, candidates)
            facts, planned = calls.facts, calls.planned
        rows = [
            _decided(campaign, cand, decide(facts(cand), wanted, rules, "campaign"), stored, now, result, planned)
            for cand in candidates
        ]
        if rows:  # one COPY per page on PostgreSQL: the ORM's insert took a statement per row
            columns = tuple(rows[0])
            bulk_insert(session, ContactAttempt, columns, [tuple(row[c] for c in columns) for row in rows])
        result.selected += len(candidates)
        if progress:
            progress(result.selected)
    campaign.selected = result.selected
    audit(
        session,
        "admin",
        "campaign.create",
        campaign.campaign_id,
        selected=result.selected,
        queued=result.queued,
        skipped=dict(result.skipped),
    )
    return result


class _CallFacts:
    """A voice campaign page's facts for calls: each person's call preferences and windows, and the
    calls that count against their caps (those queued on earlier pages read back from the table)."""

    def __init__(self, session: Session, wanted: datetime, candidates: list[Candidate]) -> None:
        self.session, self.wanted = session, wanted
        phones = sorted({c.phone for c in candidates})
        self.called = counted_contacts(session, phones, "call", wanted, planned=True) if phones else {}

    def facts(self, c: Candidate) -> ContactFacts:
        read = person_facts(self.session, c.phone, c.account_pk, "call", self.wanted, planned=True)
        return replace(read, contacts=tuple(self.called.get(c.phone, ())))

    def planned(self, c: Candidate, at: datetime) -> None:
        self.called.setdefault(c.phone, []).append(at)


def _without_phone_opt_outs(bulk: _BulkFacts) -> Callable[[Candidate], ContactFacts]:
    """WeChat: SMS opt-outs and number suppressions are the phone's; the follower's own 退订 is
    checked at send time."""
    return lambda c: replace(bulk.facts(c), opted_out=False, number_suppressed=False)


def _decided(
    campaign: Campaign,
    cand: Candidate,
    decision: Decision,
    channel: str,
    now: datetime,
    result: CampaignResult,
    planned: Callable[[Candidate, datetime], None],
) -> dict[str, object]:
    """The attempt row for one decision, counted in `result` (a queued send also in the caps)."""
    if decision.outcome == "skip":
        result.skipped[decision.reason] += 1
        status, when = "skipped", None
    else:
        result.queued += 1
        if decision.outcome == "defer":
            result.skipped["quiet_hours"] += 1
        status, when = "queued", decision.send_at
        assert when is not None
        planned(cand, when)
    return {
        "campaign_pk": campaign.id,
        "account_pk": cand.account_pk,
        "channel": channel,
        "purpose": "campaign",
        "to_phone": cand.phone,
        "status": status,
        "reason": decision.reason,
        "selected_at": now,
        "scheduled_at": when,
        "bucket": bucket_for(cand.overdue_days),
    }


@dataclass(frozen=True)
class SendDecision(Decision):
    """A queued send decided at its moment; a WeChat reminder also names the follower it goes to."""

    openid: str | None = None


def decide_at_send_time(session: Session, attempt: ContactAttempt, now: datetime, rules: ContactPolicy) -> SendDecision:
    """Decide a queued campaign send again when its time comes, and record the outcome on it:
    skipped (with the reason), deferred to the next window (queued again), or cleared to send.

    A WeChat reminder goes only to a follower still bound to the holder who has not sent 退订,
    then by the same decision as an SMS (ledger.wechat.reminder_decision)."""
    account = session.get(Account, attempt.account_pk) if attempt.account_pk is not None else None
    phone = attempt.to_phone
    if phone is None and account is not None:
        phone = attempt.to_phone = account.cardholder.phone
    assert phone is not None, "a campaign attempt is always for an account, and every holder has a phone"
    openid = None
    if attempt.channel == "wechat":
        assert account is not None, "a WeChat reminder is always for an account"
        openid = reminder_openid(session, account.cardholder_id)
        decision = (
            reminder_decision(
                session, account, openid, now, rules, exclude_attempt=attempt.id, selected_at=attempt.selected_at
            )
            if openid is not None
            else Decision("skip", "not_bound")
        )
    else:
        decision = decide_contact(
            session,
            phone=phone,
            account_pk=attempt.account_pk,
            channel="call" if attempt.channel == "call" else "sms",
            purpose="notice" if attempt.purpose == "notice" else "campaign",
            at=now,
            rules=rules,
            selected_at=attempt.selected_at,
            exclude_attempt=attempt.id,
        )
    if decision.outcome == "skip":
        attempt.status, attempt.reason = "skipped", decision.reason
    elif decision.outcome == "defer":
        attempt.status, attempt.reason, attempt.scheduled_at = "queued", decision.reason, decision.send_at
    return SendDecision(decision.outcome, decision.reason, decision.send_at, openid)


def campaign_status(session: Session, campaign_id: str) -> dict[str, object]:
    campaign = session.scalar(select(Campaign).where(Campaign.campaign_id == campaign_id))
    if campaign is None:
        raise NotFound("no such campaign", campaign_id=campaign_id)
    by_status = dict(
        session.execute(
            select(ContactAttempt.status, func.count())
            .where(ContactAttempt.campaign_pk == campaign.id)
            .group_by(ContactAttempt.status)
        ).all()
    )
    by_reason = dict(
        session.execute(
            select(ContactAttempt.reason, func.count())
            .where(ContactAttempt.campaign_pk == campaign.id)
            .group_by(ContactAttempt.reason)
        ).all()
    )
    return {"campaign": campaign, "by_status": by_status, "by_reason": by_reason}


def _of_channel(channel: str | None) -> ColumnElement[bool]:
    """Calls are placed by the voice dialer (jobs/voice_dialer.py), everything else by the sender."""
    return ContactAttempt.channel == channel if channel else ContactAttempt.channel != "call"


def claim(session: Session, attempt_id: int, channel: str | None = None) -> bool:
    """Take one queued attempt for sending; exactly one caller wins, across processes and restarts."""
    done = session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id == attempt_id, ContactAttempt.status == "queued", _of_channel(channel))
        .values(status="sending")
    )
    return int(getattr(done, "rowcount", 0)) == 1


def due_attempts(session: Session, now: datetime, limit: int, channel: str | None = None) -> list[int]:
    return list(
        session.scalars(
            select(ContactAttempt.id)
            .where(ContactAttempt.status == "queued", ContactAttempt.scheduled_at <= now, _of_channel(channel))
            .order_by(ContactAttempt.scheduled_at, ContactAttempt.id)
            .limit(limit)
        )
    )


def queued_after(session: Session, after_id: int, channel: str | None = None) -> list[tuple[int, datetime | None]]:
    """(id, send time) of the queued attempts with an id above `after_id`, for a due-queue's index;
    without a channel, the sender's (every channel but calls, which the voice dialer places)."""
    rows = session.execute(
        select(ContactAttempt.id, ContactAttempt.scheduled_at)
        .where(ContactAttempt.status == "queued", ContactAttempt.id > after_id, _of_channel(channel))
        .order_by(ContactAttempt.id)
    ).all()
    return [(attempt_id, when) for attempt_id, when in rows]


def abandon_stale(session: Session, now: datetime, older_than: timedelta = timedelta(minutes=10)) -> int:
    """After a crash, a send in flight may or may not have gone out: mark it failed, never send it again."""
    done = session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.status == "sending", ContactAttempt.scheduled_at < now - older_than)
        .values(status="failed", reason="unknown_after_restart")
    )
    return int(getattr(done, "rowcount", 0))


def recent_contact(session: Session, phone: str, since: datetime) -> tuple[str, str] | None:
    """(account id, campaign id) of the latest campaign SMS sent to this phone since `since`, if any."""
    row = session.execute(
        select(Account.account_id, Campaign.campaign_id)
        .join(ContactAttempt, ContactAttempt.account_pk == Account.id)
        .join(Campaign, Campaign.id == ContactAttempt.campaign_pk)
        .join(Cardholder, Cardholder.id == Account.cardholder_id)
        .where(Cardholder.phone == phone, ContactAttempt.status == "sent", ContactAttempt.sent_at >= since)
        .order_by(ContactAttempt.sent_at.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None
