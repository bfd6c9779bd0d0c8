"""Finding 8: verification answers and numbers in other spellings were stored and served; tickets,
complaints and holds unmasked; var/ world-readable; a CSP with 'unsafe-inline' and WebSockets to any
host; demo holders loaded into whatever DATABASE_URL named. (The tracker store: tests/bot.)"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ledger import conduct, conversations
from ledger.accounts import upsert_account
from ledger.clock import Clock
from ledger.masking import mask
from scripts.stack import private_var, wants_demo
from tests.api.conftest import WebChat
from tests.factories import record


@pytest.mark.parametrize(
    ("said", "secret"),
    [
        ("电话138-0000-0002", "0000"),
        ("电话138 0000 0002", "0000"),
        ("卡号6222  0212 3456 7890", "7890"),
        ("身份证11010119900307123X", "123X"),
        ("身份证后四位3200，卡号尾号6200", "3200"),
        ("身份证后四位3200，卡号尾号6200", "6200"),
    ],
)
def test_numbers_in_any_spacing_and_verification_answers_are_masked(said: str, secret: str) -> None:
    assert secret not in mask(said)


def test_the_transcript_shows_no_verification_answers(client: TestClient, admin: dict[str, str], web: WebChat) -> None:
    cid = web.cid("answers")
    web.post("answers", "身份证后四位3200，卡号尾号6200")
    record_ = client.get(f"/v1/conversations/{cid}/transcript", headers=admin).json()
    assert "3200" not in str(record_) and "6200" not in str(record_)


def test_tickets_complaints_and_holds_are_stored_masked(session: Session, clock: Clock) -> None:
    said = "我的卡号6222 0212 3456 7890，电话138 0000 0002"
    conv = conversations.get_or_create(session, "mask-ticket-0001", "web")
    ticket = conversations.open_ticket(session, conv, "complaint", 2, said)
    complaint = conduct.record_complaint(session, None, None, said, clock, "test")
    account = upsert_account(session, record(), actor="test")
    hold = conduct.place_hold(session, account.account_id, "dispute", said, "test")
    for stored in (ticket.summary, complaint.text, hold.reason):
        assert "7890" not in stored and "13800000002" not in stored and "0000 0002" not in stored


def test_var_is_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "app.db").write_text("x")
    os.chmod(var / "app.db", 0o644)
    old = os.umask(0o022)
    try:
        private_var(var)
        (var / "gateway.log").write_text("later")  # made afterwards, by us or a child process
    finally:
        os.umask(old)
    for path in (var / "app.db", var / "gateway.log"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(var.stat().st_mode) == 0o700


def test_pages_allow_no_inline_code_and_connect_only_home(client: TestClient) -> None:
    for page in ("/chat", "/agent", "/kpis"):
        r = client.get(page)
        csp = r.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "connect-src 'self';" in csp and "ws:" not in csp
        assert "<script>" not in r.text and "<style>" not in r.text and "style=" not in r.text
    assert client.get("/static/chat.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/..%2Fchat.html").status_code == 404


def test_demo_holders_go_only_into_the_default_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import Settings

    monkeypatch.delenv("DEMO", raising=False)
    assert wants_demo(Settings.model_fields["database_url"].default)
    assert not wants_demo("postgresql+psycopg://postgres@127.0.0.1:5432/bank")
    monkeypatch.setenv("DEMO", "1")
    assert wants_demo("postgresql+psycopg://postgres@127.0.0.1:5432/bank")
