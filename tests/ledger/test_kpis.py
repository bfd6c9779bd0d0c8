"""KPIs on a database of their own, so every rate can be checked exactly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from ledger import accounts, conduct, conversations, negotiation
from ledger.campaigns import Segment, create_campaign
from ledger.clock import process_clock
from ledger.db import transaction
from ledger.kpis import kpis
from ledger.models import ContactAttempt
from ledger.policy import Policy
from tests.conftest import fresh_schema
from tests.factories import record


def test_kpis_follow_their_definitions(tmp_path: Path, policy: Policy) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'kpi.db'}"
    fresh_schema(url)
    clock = process_clock()  # rows are stamped by the same clock
    today = clock.today()
    due = today - timedelta(days=15)
    recs = [record(phone=f"1370000000{i}", due_date=due, statement_date=due - timedelta(days=20)) for i in range(4)]
    with transaction(url) as s:
        for rec in recs:
            accounts.upsert_account(s, rec)
        result = create_campaign(s, "k", Segment(("M1",)), "reminder", None, policy.contact, clock)
        pks = [conduct.account_pk(s, r.account_id) for r in recs]
        # the sender delivered to three of the four
        s.execute(update(ContactAttempt).where(ContactAttempt.account_pk.in_(pks[:3])).values(status="sent"))
        # two holders verified in chat; one of them promised; one conversation went to a person
        for i, name in ((0, "kpi-conv-a"), (1, "kpi-conv-b")):
            conv = conversations.get_or_create(s, name, "web")
            conversations.claim_phone(s, conv, recs[i].phone)
            assert conversations.verify(s, conv, recs[i].id_last4, recs[i].card_last4, clock).result == "verified"
        negotiation.create_promise(
            s, recs[0].account_id, 10_000, today + timedelta(days=2), "chat", "kpi-p", policy, clock
        )
        conversations.open_ticket(s, conversations.get_or_create(s, "kpi-conv-b", "web"), "requested", 2, "")
        conduct.record_complaint(s, None, "kpi-conv-b", "投诉", clock, "test")
        conduct.set_preference(s, conduct.cardholder_of(s, recs[3].account_id), "sms", "opted_out", clock, "test")
        figures = kpis(s, today - timedelta(days=1), today + timedelta(days=1), policy, "Asia/Shanghai")
    assert result.selected == 4
    assert figures["accounts_targeted"] == 4
    assert figures["contact_rate"] == 0.75
    assert figures["rpc_rate"] == 0.5
    assert figures["ptp_rate"] == 0.5
    assert figures["handoff_rate"] == 0.5 and figures["containment"] == 0.5
    assert figures["complaint_rate"] == 0.5
    assert figures["opt_out_rate"] == 0.25
    assert figures["by_bucket"]["M1"]["targeted"] == 4
    assert figures["by_campaign"][result.campaign.campaign_id]["contact_rate"] == 0.75
    assert figures["roll_rate"]["M1"] == 0.0
    assert figures["recovery_rate"] == 0.0 and figures["amount_overdue_at_start"] != "0.00"


def test_sms_cost_counts_what_the_provider_took_whatever_its_receipt_says(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ledger.kpis import billed_sms
    from ledger.models import OutboundSms
    from ledger.receipts import record_receipt

    url = f"sqlite+pysqlite:///{tmp_path / 'receipts.db'}"
    fresh_schema(url)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a fixed instant: no wall clock
    with transaction(url) as s:
        for i, status in enumerate(["sent", "sent", "sent", "failed"]):
            s.add(
                OutboundSms(
                    to_phone="13700003333",
                    body="您好",
                    provider="twilio",
                    provider_id=f"SM{i}",
                    status=status,
                    created_at=t0,
                )
            )
    with transaction(url) as s:
        assert record_receipt(s, "SM0", "delivered").outcome == "recorded"
        assert record_receipt(s, "SM1", "undelivered").outcome == "recorded"
        assert record_receipt(s, "SM1", "delivered").outcome == "unchanged"
        assert record_receipt(s, "SMx", "delivered").outcome == "unknown"
    with transaction(url, readonly=True) as s:
        # SM0 delivered, SM1 undelivered, SM2 still only sent: the provider took all three; SM3 it refused.
        assert billed_sms(s, t0, t0 + timedelta(hours=1)) == 3
