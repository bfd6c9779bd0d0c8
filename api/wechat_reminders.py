"""Campaign reminders on WeChat: template messages to holders who bound their WeChat by verifying.

Decided at the moment of sending by the same conduct rules as an SMS (`ledger.wechat.reminder_decision`
calls `ledger.compliance.decide`). A template message is the only thing WeChat lets an account send
outside the 48-hour customer-service window, so reminders are always template messages; they name
the bank, carry no amount or debt detail and say how to opt out, like the SMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from api import guard, links
from api.wechat import deliver
from ledger import templates, wechat
from ledger.db import Database
from ledger.models import Account, ContactAttempt
from ledger.policy import Policy
from ledger.settings import Settings


@dataclass(frozen=True)
class Reminder:
    openid: str
    text: str
    link: str


def render(template: str, policy: Policy) -> str:
    inst = policy.institution
    return templates.render("wechat", f"{template}.j2", short_name=inst.short_name, hotline=inst.hotline)


def check_template(template: str, policy: Policy) -> str | None:
    """Why a WeChat reminder template may not be sent, or None (the SMS rules, 退订 for the opt-out)."""
    try:
        text = render(template, policy)
    except Exception as exc:  # a missing or broken template: say which
        return f"WeChat template {template!r} cannot be rendered: {type(exc).__name__}"
    if policy.institution.short_name not in text and policy.institution.name not in text:
        return "the message must name the institution"
    if "退订" not in text:
        return "the message must say how to opt out (回复“退订”)"
    if guard.ACCOUNT_DETAIL.search(text) or "逾期" in text or "欠款" in text:
        return "the message must not carry amounts or debt details a third party could read"
    return None


def prepare(
    session: Session,
    attempt: ContactAttempt,
    account: Account,
    template: str,
    settings: Settings,
    policy: Policy,
    now: datetime,
) -> Reminder | None:
    """Decide one claimed WeChat attempt now; the Reminder to send, or None with the attempt updated."""
    openid = wechat.reminder_openid(session, account.cardholder_id)
    if openid is None:  # unbound or unfollowed since the campaign selected it
        attempt.status, attempt.reason = "skipped", "not_bound"
        return None
    decision = wechat.reminder_decision(session, account, openid, now, policy.contact, exclude_attempt=attempt.id)
    if decision.outcome == "skip":
        attempt.status, attempt.reason = "skipped", decision.reason
        return None
    if decision.outcome == "defer":
        attempt.status, attempt.reason, attempt.scheduled_at = "queued", decision.reason, decision.send_at
        return None
    token = links.issue(attempt.id, settings.link_signing_key.get_secret_value(), now)
    return Reminder(openid, render(template, policy), f"{settings.public_base_url.rstrip('/')}/chat?t={token}")


async def send(
    settings: Settings, http: httpx.AsyncClient, reminder: Reminder, policy: Policy, *, db: Database
) -> bool:
    data = {
        "first": reminder.text,
        "keyword1": policy.institution.name,
        "remark": f"客服电话{policy.institution.hotline}",
    }
    record = await deliver(
        settings,
        http,
        reminder.openid,
        reminder.text,
        template=(settings.wechat_reminder_template_id, data, reminder.link),
        db=db,
    )
    return record.status == "sent"
