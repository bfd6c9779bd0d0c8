"""Campaigns: select accounts, decide each send against the conduct rules, enqueue; send once.

Selection and the facts the rules need are read in a few bulk queries, so a campaign over
100,000 accounts costs seconds, not minutes. Every decision is stored with its reason.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ledger.accounts import audit
from ledger.clock import Clock
from ledger.compliance import ContactFacts, decide
from ledger.errors import NotFound, ValidationFailed
from ledger.fees import bucket_for
from ledger.models import (
    Account,
    Campaign,
    Cardholder,
    ContactAttempt,
    ContactPreference,
    Hold,
    LedgerEntry,
    Plan,
    Promise,
    Statement,
)
from ledger.policy import BUCKETS, ContactPolicy

ACTIVE_ATTEMPT = ("queued", "sending", "sent")
SKIP_KEYS = ("opted_out", "quiet_hours", "frequency_cap", "hold", "arrangement")
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
    timezone: str
    overdue_days: int


def select_candidates(session: Session, segment: Segment, today: date) -> list[Candidate]:
    """Overdue accounts in the segment: minimum unpaid (statement payments plus posted ones) after the due date."""
    posted = (
        select(LedgerEntry.account_pk, func.sum(LedgerEntry.amount).label("paid"))
        .join(Statement, Statement.account_pk == LedgerEntry.account_pk)
        .where(LedgerEntry.kind == "payment", LedgerEntry.effective_date >= Statement.statement_date)
        .group_by(LedgerEntry.account_pk)
        .subquery()
    )
    rows = session.execute(
        select(
            Account.id,
            Account.cardholder_id,
            Cardholder.timezone,
            Statement.due_date,
            Statement.minimum_payment,
            Statement.paid_since_statement,
            func.coalesce(posted.c.paid, 0),
        )
        .join(Statement, Statement.account_pk == Account.id)
        .join(Cardholder, Cardholder.id == Account.cardholder_id)
        .outerjoin(posted, posted.c.account_pk == Account.id)
        .where(Statement.due_date < today)
    )
    out = []
    for pk, holder, tz, due, minimum, paid_since, paid_posted in rows:
        if paid_since + paid_posted >= minimum:
            continue
        overdue = (today - due).days
        if segment.matches(overdue):
            out.append(Candidate(pk, holder, tz, overdue))
    return out


def _facts_loader(session: Session, today: date, now: datetime) -> Callable[[Candidate, datetime], ContactFacts]:
    opted_out = set(
        session.scalars(
            select(ContactPreference.cardholder_id).where(
                ContactPreference.channel == "sms", ContactPreference.value == "opted_out"
            )
        )
    )
    holds: defaultdict[int, set[str]] = defaultdict(set)
    for pk, kind in session.execute(select(Hold.account_pk, Hold.kind).where(Hold.active)):
        holds[pk].add(kind)
    plans = set(session.scalars(select(Plan.account_pk).where(Plan.status.in_(("active", "pending_approval")))))
    promises = set(
        session.scalars(select(Promise.account_pk).where(Promise.status == "open", Promise.due_date >= today))
    )
    recent: defaultdict[int, list[datetime]] = defaultdict(list)
    for pk, when in session.execute(
        select(ContactAttempt.account_pk, ContactAttempt.scheduled_at).where(
            ContactAttempt.status.in_(ACTIVE_ATTEMPT), ContactAttempt.scheduled_at >= now - timedelta(days=8)
        )
    ):
        if when is not None:
            recent[pk].append(when)

    def facts(c: Candidate, send_at: datetime) -> ContactFacts:
        tz = ZoneInfo(c.timezone)
        local_day = send_at.astimezone(tz).date()
        times = [t.astimezone(tz) for t in recent.get(c.account_pk, ())]
        return ContactFacts(
            timezone=c.timezone,
            sms_opted_out=c.cardholder_id in opted_out,
            holds=frozenset(holds.get(c.account_pk, ())),
            sent_today=sum(1 for t in times if t.date() == local_day),
            sent_last_7_days=sum(1 for t in times if local_day - timedelta(days=6) <= t.date() <= local_day),
            has_active_plan=c.account_pk in plans,
            has_open_promise_not_due=c.account_pk in promises,
        )

    return facts


def create_campaign(
    session: Session,
    name: str,
    segment: Segment,
    template: str,
    send_at: datetime | None,
    rules: ContactPolicy,
    clock: Clock,
    progress: Progress | None = None,
    chunk: int = 5000,
    channel: str = "sms",
) -> CampaignResult:
    """Select, decide and enqueue in one transaction; returns the counts the API reports."""
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
    candidates = select_candidates(session, segment, clock.today())
    facts = _facts_loader(session, clock.today(), now)
    if channel == "wechat":  # holders who bound their WeChat by verifying there and did not 退订 it
        from ledger.wechat import bound_cardholders

        bound = bound_cardholders(session)
        candidates = [c for c in candidates if c.cardholder_id in bound]
        sms_facts = facts  # opt-outs are per channel: an SMS opt-out does not stop WeChat reminders
        facts = lambda c, at: replace(sms_facts(c, at), sms_opted_out=False)  # noqa: E731
    result.selected = campaign.selected = len(candidates)
    rows: list[dict[str, object]] = []
    for i, cand in enumerate(candidates, 1):
        decision = decide(facts(cand, wanted), wanted, rules)
        if decision.outcome == "skip":
            result.skipped[decision.reason] += 1
            status, when = "skipped", None
        else:
            result.queued += 1
            if decision.outcome == "defer":
                result.skipped["quiet_hours"] += 1
            status, when = "queued", decision.send_at
        rows.append(
            {
                "campaign_pk": campaign.id,
                "account_pk": cand.account_pk,
                "channel": channel,
                "status": status,
                "reason": decision.reason,
                "scheduled_at": when,
                "bucket": bucket_for(cand.overdue_days),
            }
        )
        if len(rows) >= chunk:
            session.execute(insert(ContactAttempt), rows)
            rows = []
            if progress:
                progress(i)
    if rows:
        session.execute(insert(ContactAttempt), rows)
    if progress:
        progress(len(candidates))
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


def claim(session: Session, attempt_id: int) -> bool:
    """Take one queued attempt for sending; exactly one caller wins, across processes and restarts."""
    done = session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id == attempt_id, ContactAttempt.status == "queued")
        .values(status="sending")
    )
    return int(getattr(done, "rowcount", 0)) == 1


def due_attempts(session: Session, now: datetime, limit: int) -> list[int]:
    return list(
        session.scalars(
            select(ContactAttempt.id)
            .where(ContactAttempt.status == "queued", ContactAttempt.scheduled_at <= now)
            .order_by(ContactAttempt.scheduled_at, ContactAttempt.id)
            .limit(limit)
        )
    )


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
