"""Campaign reminders on WeChat: template messages to holders who bound their WeChat by verifying.

Decided at the moment of sending by the same conduct rules as an SMS (`ledger.campaigns.decide_at_send_time`,
through `ledger.wechat.reminder_decision`). A template message is the only thing WeChat lets an account
send outside the 48-hour customer-service window, so reminders are always template messages; they name
the bank, carry no amount or debt detail and say how to opt out, like the SMS.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from api import guard
from api.channels.wechat.provider import deliver
from ledger import templates
from ledger.db import Database
from ledger.policy import Policy
from settings import Settings


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
    inst = policy.institution
    return guard.reminder_problem(text, (inst.short_name, inst.name), opt_out=("退订",))


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
