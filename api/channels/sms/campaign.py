"""The campaign SMS: rendered from its template, and checked before a campaign may use it."""

from __future__ import annotations

from api import guard
from ledger import templates
from ledger.policy import Policy


def render(template: str, policy: Policy, link: str) -> str:
    inst = policy.institution
    return templates.render(
        "sms", f"{template}.j2", short_name=inst.short_name, institution=inst.name, hotline=inst.hotline, link=link
    )


def check_template(template: str, policy: Policy) -> str | None:
    """Why a template may not be sent (names no institution, has no opt-out, shows debt detail), or None."""
    try:
        text = render(template, policy, "https://example.invalid/chat?t=1.2.x")
    except Exception as exc:  # a missing or broken template: say which
        return f"template {template!r} cannot be rendered: {type(exc).__name__}"
    inst = policy.institution
    return guard.reminder_problem(text, (inst.short_name, inst.name), opt_out=("退订", "TD"))
