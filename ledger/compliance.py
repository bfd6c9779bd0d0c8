"""The one decision for every outbound contact: to a person, on a channel, at the moment of sending.

A person is a phone number and the holder behind it, across all their cards. Whoever asks
(a campaign, its sender when the time comes, an agent, a bot reply on SMS, a plan notice)
gets the same answer from `decide`, over the facts `person_facts` reads:

- the window in the holder's local time (policy, never outside 08:00-22:00); a send in quiet
  hours is deferred to the next permitted moment and decided again then;
- caps per day and per 7 days for the person, counted on the local day the message actually goes;
- opt-outs per channel (the holder's, or the number owner's 退订), holds, a wrong-number report;
- for campaign reminders: an arrangement in force, a payment since selection, a hardship pause.

- the holder's preferences for the channel: opted out, or restricted to time windows (a send
  outside them is deferred to the next moment they allow) and never to a forbidden place.

A message within `reply_window_minutes` of the person's own message is a reply, not a contact: it
does not count against the caps. Only the bot's answer to the person's just-sent message goes out
whatever the hour; anyone else's (an agent's) waits for the window and the holder's own windows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ledger.contact_preferences import ChannelRules
from ledger.errors import LedgerError
from ledger.models import (
    Account,
    Cardholder,
    ContactAttempt,
    ContactPreference,
    Hardship,
    Hold,
    LedgerEntry,
    NumberSuppression,
    Plan,
    Promise,
)
from ledger.policy import ContactPolicy
from ledger.sql import among

Channel = Literal["sms", "wechat", "call"]
Purpose = Literal["campaign", "notice", "agent", "reply"]
Outcome = Literal["send", "defer", "skip"]
Reason = Literal[
    "ok",
    "reply",
    "quiet_hours",
    "hold",
    "opted_out",
    "number_suppressed",
    "arrangement",
    "paid",
    "hardship",
    "frequency_cap",
    "not_bound",  # a WeChat reminder whose holder has no bound, following openid any more
    "preferred_hours",  # outside the time windows the holder asked for: deferred to the next one
    "not_this_place",  # the holder asked not to be contacted there (e.g. their workplace)
]
Place = Literal["mobile", "workplace", "home"]
DEFAULT_TIMEZONE = "Asia/Shanghai"
# The contact-preference name of each channel (the account view says "calls").
PREFERENCE_OF: dict[str, str] = {"sms": "sms", "wechat": "wechat", "call": "calls"}
# Written messages share one cap per person (the conduct rule: 1 SMS per person across cards and channels);
# calls have their own.
CAP_GROUP: dict[str, tuple[str, ...]] = {"sms": ("sms", "wechat"), "wechat": ("sms", "wechat"), "call": ("call",)}
PERSON_WIDE_HOLDS = frozenset({"deceased"})  # a death stops contact about every card of that person
COUNTED_PLANNED = ("queued", "sending", "sent")
COUNTED_SENT = ("sending", "sent")
ANY_TIME = ChannelRules()  # a channel the holder has not restricted


@dataclass(frozen=True)
class ContactFacts:
    """What the rules need to know about one person (and the account concerned), gathered by the caller."""

    timezone: str = DEFAULT_TIMEZONE
    opted_out: bool = False  # the holder opted out of this channel
    number_suppressed: bool = False  # the number's owner said 退订, or said it is not the holder's number
    holds: frozenset[str] = frozenset()
    has_arrangement: bool = False  # an active or pending plan, or an open promise not yet due
    paid_since_selection: bool = False
    hardship_until: date | None = None  # reminders pause through this day
    contacts: tuple[datetime, ...] = ()  # the person's counted contacts on this channel's cap group
    last_inbound_at: datetime | None = None  # the person's own latest message to us
    preference: ChannelRules = ANY_TIME  # the holder's rules for this channel (windows, places)
    place: str = "mobile"  # where this contact would reach them


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: Reason
    send_at: datetime | None = None  # when it may go (aware, holder's zone); None for a skip


def next_window_start(local: datetime, rules: ContactPolicy) -> datetime:
    """The first permitted moment at or after `local` (aware, in the holder's zone)."""
    start, end = rules.window_start, rules.window_end
    t = local.timetz().replace(tzinfo=None)
    if start <= t < end:
        return local
    day = local.date() if t < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=local.tzinfo)


def in_window(when: datetime, timezone: str, rules: ContactPolicy) -> bool:
    t = when.astimezone(ZoneInfo(timezone)).timetz().replace(tzinfo=None)
    return rules.window_start <= t < rules.window_end


def is_reply(facts: ContactFacts, wanted_at: datetime, rules: ContactPolicy) -> bool:
    last = facts.last_inbound_at
    return last is not None and timedelta(0) <= wanted_at - last <= timedelta(minutes=rules.reply_window_minutes)


def decide(facts: ContactFacts, wanted_at: datetime, rules: ContactPolicy, purpose: Purpose = "campaign") -> Decision:
    """Send now, defer to the next window, or skip with the reason: one message to one person."""
    if wanted_at.tzinfo is None:
        raise ValueError("wanted_at must be aware")
    zone = ZoneInfo(facts.timezone)
    local = wanted_at.astimezone(zone)
    replying = purpose != "campaign" and is_reply(facts, wanted_at, rules)
    if replying and purpose == "reply":
        return Decision("send", "reply", local)  # the bot answers what they just wrote: not a contact attempt
    if not replying:  # an agent answering their message may still answer (a dispute, a 退订 question)
        if facts.holds:
            return Decision("skip", "hold")
        if facts.opted_out or facts.preference.opted_out:
            return Decision("skip", "opted_out")
        if facts.number_suppressed:
            return Decision("skip", "number_suppressed")
    if purpose == "campaign":
        if facts.has_arrangement:
            return Decision("skip", "arrangement")
        if facts.paid_since_selection:
            return Decision("skip", "paid")
    if not facts.preference.allows_place(facts.place):
        return Decision("skip", "not_this_place")
    at = facts.preference.next_allowed(local, rules.window_start, rules.window_end)
    if at is None:
        return Decision("skip", "opted_out")
    day = at.date()
    if purpose in ("campaign", "notice") and facts.hardship_until is not None and day <= facts.hardship_until:
        return Decision("skip", "hardship")
    if not replying:
        days = [c.astimezone(zone).date() for c in facts.contacts]
        on_day = sum(1 for d in days if d == day)
        # Every 7-day window that would hold this message, not only the one ending on its day: a send
        # planned for later in the week counts too.
        in_week = max(
            sum(1 for d in days if day - timedelta(days=6 - k) <= d <= day + timedelta(days=k)) for k in range(7)
        )
        if on_day >= rules.sms_per_day or in_week >= rules.sms_per_7_days:
            return Decision("skip", "frequency_cap")
    if at != local:
        reason: Reason = "quiet_hours" if at == next_window_start(local, rules) else "preferred_hours"
        return Decision("defer", reason, at)
    return Decision("send", "reply" if replying else "ok", local)


class ContactNotAllowed(LedgerError):
    """An outbound message the rules do not allow now; `details` say why and when it may go."""

    code = "contact_not_allowed"

    @classmethod
    def because(cls, decision: Decision) -> ContactNotAllowed:
        when = decision.send_at.isoformat() if decision.outcome == "defer" and decision.send_at else None
        return cls(REFUSAL_TEXT.get(decision.reason, decision.reason), reason=decision.reason, next_window=when)


# What an agent reads when their message to the person may not go out.
REFUSAL_TEXT: dict[str, str] = {
    "quiet_hours": "现在不在对方当地的可联系时段，未发送（next_window 之后可以发送）",
    "hold": "账户处于暂停状态（争议、身故或法律原因），不能联系",
    "opted_out": "对方已退订这个渠道，未发送",
    "number_suppressed": "这个号码已退订，或被报告不是持卡人的号码，未发送",
    "frequency_cap": "已达到对方当天或7天内的联系次数上限，未发送",
    "hardship": "对方申报了困难，提醒暂停中，未发送",
    "preferred_hours": "对方要求只在指定时段联系，现在不在其时段内，未发送（next_window 之后可以发送）",
    "not_this_place": "对方要求不要在这个地点（如单位）联系，未发送",
}


# --- reading the facts ---------------------------------------------------------------------------


def person_facts(
    session: Session,
    phone: str,
    account_pk: int | None,
    channel: Channel,
    around: datetime,
    *,
    planned: bool = False,
    selected_at: datetime | None = None,
    exclude_attempt: int | None = None,
    last_inbound_at: datetime | None = None,
    place: Place = "mobile",
) -> ContactFacts:
    """The facts for one contact to `phone` (about `account_pk`, if any) near the moment `around`.

    `planned=True` counts contacts queued for later too (deciding ahead, when a campaign is made);
    otherwise only what has gone or is going (deciding at the moment of sending).
    """
    holders = list(
        session.execute(select(Cardholder.id, Cardholder.timezone).where(Cardholder.phone == phone)).tuples()
    )
    holder_ids = [h for h, _ in holders]
    timezone = _timezone(session, account_pk, holders)
    preference = ANY_TIME
    if holder_ids:  # set for the person (every holder record of the phone); the strictest row wins
        rows = session.execute(
            select(ContactPreference.value, ContactPreference.rules).where(
                ContactPreference.cardholder_id.in_(holder_ids),
                ContactPreference.channel == PREFERENCE_OF[channel],
                ContactPreference.value.in_(("opted_out", "restricted")),
            )
        ).all()
        found = [ChannelRules.stored(value, rules) for value, rules in rows]
        preference = next((r for r in found if r.opted_out), found[0] if found else preference)
    opted_out = preference.opted_out
    suppressed = session.scalar(
        select(NumberSuppression.id)
        .where(
            NumberSuppression.phone == phone,
            NumberSuppression.active,
            NumberSuppression.channel.in_((channel, "all")),
            or_(NumberSuppression.account_pk.is_(None), NumberSuppression.account_pk == account_pk),
        )
        .limit(1)
    )
    holds: set[str] = set()
    if account_pk is not None:
        holds |= set(session.scalars(select(Hold.kind).where(Hold.account_pk == account_pk, Hold.active)))
    if holder_ids:
        holds |= set(
            session.scalars(
                select(Hold.kind)
                .join(Account, Account.id == Hold.account_pk)
                .where(Account.cardholder_id.in_(holder_ids), Hold.active, Hold.kind.in_(PERSON_WIDE_HOLDS))
            )
        )
    arrangement = paid = False
    if account_pk is not None:
        today = around.astimezone(ZoneInfo(timezone)).date()
        arrangement = bool(
            session.scalar(
                select(Plan.id)
                .where(Plan.account_pk == account_pk, Plan.status.in_(("active", "pending_approval")))
                .limit(1)
            )
            or session.scalar(
                select(Promise.id)
                .where(Promise.account_pk == account_pk, Promise.status == "open", Promise.due_date >= today)
                .limit(1)
            )
        )
        if selected_at is not None:
            paid = bool(
                session.scalar(
                    select(LedgerEntry.id)
                    .where(
                        LedgerEntry.account_pk == account_pk,
                        LedgerEntry.kind == "payment",
                        LedgerEntry.effective_date >= selected_at.astimezone(ZoneInfo(timezone)).date(),
                    )
                    .limit(1)
                )
            )
    hardship_until = session.scalar(select(func.max(Hardship.pause_until)).where(Hardship.phone == phone))
    return ContactFacts(
        timezone=timezone,
        opted_out=opted_out,
        number_suppressed=suppressed is not None,
        holds=frozenset(holds),
        has_arrangement=arrangement,
        paid_since_selection=paid,
        hardship_until=hardship_until,
        contacts=tuple(counted_contacts(session, [phone], channel, around, planned, exclude_attempt).get(phone, ())),
        last_inbound_at=last_inbound_at,
        preference=preference,
        place=place,
    )


def counted_contacts(
    session: Session,
    phones: Iterable[str] | None,
    channel: Channel,
    around: datetime,
    planned: bool,
    exclude_attempt: int | None = None,
) -> dict[str, list[datetime]]:
    """Per phone, the contacts that count against its caps within 8 days either side of `around`
    (all phones when `phones` is None)."""
    when = func.coalesce(ContactAttempt.sent_at, ContactAttempt.scheduled_at)
    query = select(ContactAttempt.to_phone, when).where(
        ContactAttempt.channel.in_(CAP_GROUP[channel]),
        ContactAttempt.status.in_(COUNTED_PLANNED if planned else COUNTED_SENT),
        when >= around - timedelta(days=8),
        when <= around + timedelta(days=8),
    )
    if phones is not None:
        query = query.where(among(session, ContactAttempt.to_phone, list(phones)))
    if exclude_attempt is not None:
        query = query.where(ContactAttempt.id != exclude_attempt)
    out: dict[str, list[datetime]] = {}
    for phone, at in session.execute(query):
        if phone is not None and at is not None:
            out.setdefault(phone, []).append(at)
    return out


def _timezone(session: Session, account_pk: int | None, holders: list[tuple[int, str]]) -> str:
    if account_pk is not None:
        tz = session.scalar(
            select(Cardholder.timezone)
            .join(Account, Account.cardholder_id == Cardholder.id)
            .where(Account.id == account_pk)
        )
        if tz:
            return tz
    return holders[0][1] if holders and holders[0][1] else DEFAULT_TIMEZONE


# --- the public entry point ----------------------------------------------------------------------


def decide_contact(
    session: Session,
    *,
    phone: str,
    account_pk: int | None,
    channel: Channel,
    purpose: Purpose,
    at: datetime,
    rules: ContactPolicy,
    selected_at: datetime | None = None,
    exclude_attempt: int | None = None,
    last_inbound_at: datetime | None = None,
    place: Place = "mobile",
) -> Decision:
    """Decide one contact at the moment it would go. Every sender calls this (or `decide` over
    facts read in bulk, for a campaign being made); nothing else decides."""
    facts = person_facts(
        session,
        phone,
        account_pk,
        channel,
        at,
        selected_at=selected_at,
        exclude_attempt=exclude_attempt,
        last_inbound_at=last_inbound_at,
        place=place,
    )
    return decide(facts, at, rules, purpose)


def record_contact(
    session: Session,
    *,
    phone: str,
    account_pk: int | None,
    channel: Channel,
    purpose: Purpose,
    decision: Decision,
    at: datetime,
) -> ContactAttempt | None:
    """Keep a contact that was not a reply (an agent's message, a notice), sent or refused, so it
    counts against the person's caps and shows in the record. Replies are not contact attempts."""
    if decision.reason == "reply":
        return None
    sent = decision.outcome == "send"
    attempt = ContactAttempt(
        campaign_pk=None,
        account_pk=account_pk,
        channel=channel,
        purpose=purpose,
        to_phone=phone,
        status="sent" if sent else "skipped",
        reason=decision.reason,
        selected_at=at,
        scheduled_at=at if sent else None,
        sent_at=at if sent else None,
        bucket="",
    )
    session.add(attempt)
    session.flush()
    return attempt
