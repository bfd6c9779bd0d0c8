"""An outbound campaign's link opens a conversation in context, with the real Rasa server."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from api.channels import links
from ledger import conduct
from ledger.clock import process_clock
from ledger.db import transaction
from ledger.models import ContactAttempt
from ledger.money import fen_to_text, yuan_to_fen
from tests.e2e.accounts import new_holder, view
from tests.e2e.conftest import Running

pytestmark = [pytest.mark.e2e, pytest.mark.calendar]


def test_link_opens_a_conversation_greeted_in_context(running: Running, database_url: str) -> None:
    holder = new_holder(running, overdue_days=40)
    r = httpx.post(
        f"{running.gateway}/v1/campaigns",
        headers=running.admin,
        timeout=60,
        json={"name": "M2 提醒", "segment": {"min_overdue_days": 40, "max_overdue_days": 40}, "template": "reminder"},
    )
    assert r.status_code == 201, r.text
    with transaction(database_url) as s:
        pk = conduct.account_pk(s, holder.account_id)
        attempt_id = s.scalar(select(ContactAttempt.id).where(ContactAttempt.account_pk == pk))
    assert attempt_id is not None  # queued now, or deferred out of quiet hours: the link is the same
    token = links.issue(attempt_id, running.secrets["LINK_SIGNING_KEY"], process_clock().now())
    cid = running.open_session(link_token=token)
    [greeting] = [m["text"] for m in running.messages(cid)["messages"]]  # type: ignore[index]
    assert "示例银行信用卡中心" in greeting and "身份证" in greeting and "元" not in greeting
    # The phone came with the link: ID and card last four complete the check.
    assert "验证通过" in running.texts(cid, f"身份证后四位{holder.id_last4}，卡号后四位{holder.card_last4}")
    assert fen_to_text(yuan_to_fen(view(running, holder)["amount_due"])) in running.texts(cid, "我欠多少")
    # Opened again, the link starts afresh: another conversation, none of the history, verify again.
    again = running.open_session(link_token=token)
    assert again != cid and len(running.messages(again)["messages"]) == 1  # type: ignore[arg-type]
    assert "元" not in running.texts(again, "我欠多少")
