"""Who may approve a plan that policy reserves to a person (a personalised plan, a fee waiver).

A supervisor may approve any. An agent may approve one alone only while it holds (has claimed) a
conversation of the plan's account, and only within `policy.yml` `approval:` (periods and
principal); beyond that a supervisor decides. `decide_approval` is the pure rule;
`ledger.negotiation.approve_plan` reads the facts, applies it and audits who approved and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledger.errors import LedgerError
from ledger.policy import ApprovalPolicy

Basis = Literal["supervisor", "agent_within_limit", "not_holding_conversation", "over_agent_limit"]


class ApprovalRefused(LedgerError):
    """This principal may not approve this plan (details: `basis`)."""

    code = "approval_not_allowed"


@dataclass(frozen=True)
class ApprovalFacts:
    role: str  # agent | supervisor
    holds_conversation: bool  # a claimed ticket of this agent on a conversation of the plan's account
    periods: int
    principal: int  # fen


@dataclass(frozen=True)
class ApprovalDecision:
    allowed: bool
    basis: Basis


def decide_approval(facts: ApprovalFacts, rules: ApprovalPolicy) -> ApprovalDecision:
    """A supervisor approves any plan; an agent only one of a conversation it holds, within its limit."""
    if facts.role == "supervisor":
        return ApprovalDecision(True, "supervisor")
    if not facts.holds_conversation:
        return ApprovalDecision(False, "not_holding_conversation")
    if facts.periods > rules.agent_max_periods or facts.principal > rules.agent_max_principal_fen:
        return ApprovalDecision(False, "over_agent_limit")
    return ApprovalDecision(True, "agent_within_limit")
