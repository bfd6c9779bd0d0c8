"""Conversations handed to people only because the bot was away, and given back when it returns."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from ledger import conversations, handoff
from ledger.db import transaction
from ledger.kpis import kpis
from ledger.models import Conversation, HandoffTicket
from ledger.policy import Policy
from tests.conftest import TZ, fresh_schema

DAY = date(2026, 4, 5)


def test_back_with_the_bot_unless_an_agent_took_it_and_only_taken_ones_count_as_handoffs(
    tmp_path: Path, policy: Policy
) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'recovery.db'}"
    fresh_schema(url)
    with transaction(url) as s:
        for cid in ("away-alone", "away-taken", "asked-for-a-person"):
            conv = conversations.get_or_create(s, cid, "web")
            reason = "request_human" if cid == "asked-for-a-person" else handoff.SERVICE_UNAVAILABLE
            conversations.open_ticket(s, conv, reason, 1, "")
        handoff.claim(s, "away-taken", "xiaowang")
        noon = datetime(2026, 4, 5, 12, 0, tzinfo=TZ)  # a fixed day for the KPI period
        s.execute(update(Conversation).values(created_at=noon))
        s.execute(update(HandoffTicket).values(created_at=noon))
    with transaction(url) as s:
        assert handoff.waiting_for_the_bot(s) == ["away-alone"]
        assert [handoff.return_to_bot(s, c) for c in ("away-alone", "away-taken", "asked-for-a-person")] == [
            True,
            False,
            False,
        ]
        assert handoff.return_to_bot(s, "away-alone") is False  # once only
        modes = {c.conversation_id: c.mode for c in s.query(Conversation)}
        assert modes == {"away-alone": "bot", "away-taken": "human", "asked-for-a-person": "human"}
        assert [q.conversation_id for q in handoff.queue(s)] == ["away-taken", "asked-for-a-person"]
        # Two of three went to a person; the one the bot took back was contained.
        figures = kpis(s, DAY, DAY + timedelta(days=1), policy, "Asia/Shanghai")
        assert figures["handoff_rate"] == round(2 / 3, 4) and figures["containment"] == round(1 / 3, 4)
