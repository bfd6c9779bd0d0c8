"""The second outside review (issue 31), one regression test per numbered finding and a few beside.

Each failed on the code as the review found it.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from api.channels.wechat.provider import push_xml
from api.channels.wechat.provider import signature as wechat_signature
from api.deps import clock_dep
from api.hub import QUEUE_TOPIC, conversation_topic
from ledger import agents, negotiation
from ledger.approvals import ApprovalFacts, decide_approval
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.errors import PolicyError
from ledger.masking import mask, read_digits
from ledger.models import Account, Agent, AuditLog, Conversation, LedgerEntry, Plan, WeChatPush
from ledger.policy import ApprovalPolicy, load_policy, parse_policy
from settings import get_settings
from tests.api.conftest import ADMIN, SMS_DEV_SECRET, WebChat
from tests.api.test_accounts_api import account_body
from tests.conftest import ROOT
from tests.security.test_6_agents import _verified_handoff, agent

# ---- 1. every write is committed before its response is sent ----


class ReadsAtResponseStart:
    """Wraps the gateway: the moment a 201 starts going out, `read()` looks in the database through a
    connection of its own, as a caller acting on the 201 at once would."""

    def __init__(self, app: ASGIApp, read: Any) -> None:
        self.app = app
        self.read = read
        self.seen: list[tuple[str, bool]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 201:
                self.seen.append((scope["path"], self.read(scope["path"])))
            await send(message)

        await self.app(scope, receive, watched)


@pytest.fixture
def committed_client(database_url: str, committed_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The gateway on a database whose commits stay (as in production), not the test's savepoints."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ADMIN_API_TOKEN", ADMIN)
    monkeypatch.setenv("RASA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ACTION_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AGENT_JWT_KEY", "test-agent-key-that-is-long-enough-for-hs256")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "100000")
    monkeypatch.setenv("SMS_INBOUND_DEV_SECRET", SMS_DEV_SECRET)
    monkeypatch.setenv("BOT_RECOVERY_SECONDS", "0")
    get_settings.cache_clear()
    from api.main import create_app

    reader = Database(database_url)
    created: dict[str, str] = {}

    def read(path: str) -> bool:
        with reader.transaction(readonly=True) as s:
            if path == "/v1/accounts":
                return s.scalar(select(Account.id).where(Account.account_id == created["account"])) is not None
            if path == "/v1/agents":
                return s.scalar(select(Agent.id).where(Agent.username == created["agent"])) is not None
            if path.endswith("/payments"):
                entry = select(LedgerEntry.id).where(LedgerEntry.reference == created["payment"])
                return s.scalar(entry) is not None
            raise AssertionError(path)

    wrapped = ReadsAtResponseStart(create_app(committed_db), read)
    with TestClient(wrapped, raise_server_exceptions=False) as c:  # type: ignore[arg-type]
        yield c, wrapped, created
    reader.dispose()
    get_settings.cache_clear()


def test_1_a_201_is_sent_only_once_its_row_is_committed(committed_client: Any) -> None:
    client, wrapped, created = committed_client
    admin = {"Authorization": f"Bearer {ADMIN}"}
    body = account_body()
    created["account"] = body["account_id"]
    assert client.post("/v1/accounts", json=body, headers=admin).status_code == 201
    created["agent"] = f"a-{uuid.uuid4().hex[:8]}"
    agent = {"username": created["agent"], "password": "correct horse 42", "display_name": "小王"}
    assert client.post("/v1/agents", json=agent, headers=admin).status_code == 201
    created["payment"] = f"bank-{uuid.uuid4().hex}"
    pay = {"amount": "500.00", "paid_at": "2026-04-01T10:00:00+08:00", "reference": created["payment"]}
    payments = f"/v1/accounts/{body['account_id']}/payments"
    assert client.post(payments, json=pay, headers=admin).status_code == 201
    # A read made as each 201 started going out found its row.
    assert wrapped.seen == [("/v1/accounts", True), ("/v1/agents", True), (payments, True)]


def test_1_a_commit_that_fails_is_a_5xx_and_nothing_is_claimed(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = {"on": True}

    def refuse(session: Session) -> None:
        if failing["on"]:
            raise OperationalError("COMMIT", None, Exception("disk I/O error"))

    event.listen(Session, "before_commit", refuse)
    try:
        body = account_body()
        r = client.post("/v1/accounts", json=body, headers=admin)
    finally:
        failing["on"] = False
        event.remove(Session, "before_commit", refuse)
    assert r.status_code >= 500, r.text
    assert body["account_id"] not in r.text
    assert client.get(f"/v1/accounts/{body['account_id']}", headers=admin).status_code == 404


# ---- 2. a socket follows a conversation only while its agent may read it ----


def _events_until_heartbeat(client: TestClient, ws: Any, settle: float = 0.4) -> list[dict[str, Any]]:
    """What the console hears, up to a queue event published once the others had time to arrive."""
    time.sleep(settle)
    client.app.state.chat.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": "heartbeat"})  # type: ignore[attr-defined]
    heard = []
    while True:
        event = ws.receive_json()
        if event.get("conversation_id") == "heartbeat":
            return heard
        heard.append(event)


def test_2_a_released_conversation_stops_reaching_the_agents_socket(
    client: TestClient, admin: dict[str, str], web: WebChat, db: Database
) -> None:
    cid = _verified_handoff(web, db, "released")
    _, alice = agent(client, admin)
    assert client.post(f"/v1/agent/conversations/{cid}/claim", headers=alice).status_code == 200
    hub = client.app.state.chat.hub  # type: ignore[attr-defined]
    amounts = {"type": "message", "seq": 99, "sender": "bot", "text": "您目前需还款10210.00元"}
    raw = alice["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect("/v1/agent/ws", subprotocols=["bearer", raw]) as ws:
        ws.send_json({"follow": cid})
        # Following while claimed: the socket says nothing when the follow takes effect, so the
        # holder's message is published again until it arrives (a busy machine takes longer).
        following = False
        for _ in range(25):
            hub.publish(conversation_topic(cid), {"type": "message", "seq": 98, "sender": "user", "text": "在吗"})
            if any(e.get("seq") == 98 for e in _events_until_heartbeat(client, ws, settle=0.2)):
                following = True
                break
        assert following
        assert client.post(f"/v1/agent/conversations/{cid}/release", headers=alice).status_code == 200
        hub.publish(conversation_topic(cid), amounts)  # the holder verifies again and asks what is owed
        heard = _events_until_heartbeat(client, ws)
    assert all(e.get("type") != "message" for e in heard), heard
    assert "10210" not in str(heard)


# ---- 3. plan approval: a supervisor, or the agent holding the conversation within its limit ----


def _pending_plan(db: Database, cid: str, periods: int) -> str:
    """A personalised plan (policy: approval needed) made in the holder's verified conversation."""
    policy = load_policy(ROOT / "policy.yml")
    clock = process_clock("Asia/Shanghai")
    with db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == cid))
        assert conv is not None and conv.account_pk is not None
        account_id = s.scalar(select(Account.account_id).where(Account.id == conv.account_pk))
        assert account_id is not None
        sit = negotiation.situation(s, account_id, policy, clock)
        offer = negotiation.offer_for(sit, "personalized", clock.today(), periods=periods)
        plan, _ = negotiation.create_plan(s, account_id, offer, "chat", f"k-{uuid.uuid4().hex}", clock)
        assert plan.status == "pending_approval"
        return plan.plan_id


def test_3_only_a_supervisor_or_the_holding_agent_within_its_limit_approves_and_says_why(
    client: TestClient, admin: dict[str, str], web: WebChat, db: Database
) -> None:
    cid = _verified_handoff(web, db, "approval")
    alice_name, alice = agent(client, admin)
    _, bob = agent(client, admin)
    boss_name, boss = agent(client, admin, "supervisor")
    assert client.post(f"/v1/agent/conversations/{cid}/claim", headers=alice).status_code == 200
    big = _pending_plan(db, cid, periods=24)  # over an agent's 12 periods (policy.yml approval:)
    why = {"reason": "持卡人失业，月供能力约500元"}
    r = client.post(f"/v1/agent/plans/{big}/approve", json=why, headers=bob)  # never claimed it
    assert r.status_code == 403 and r.json()["error"]["details"]["basis"] == "not_holding_conversation"
    r = client.post(f"/v1/agent/plans/{big}/approve", json=why, headers=alice)  # holds it, over its limit
    assert r.status_code == 403 and r.json()["error"]["details"]["basis"] == "over_agent_limit"
    assert client.post(f"/v1/agent/plans/{big}/approve", json={}, headers=boss).status_code == 422  # no reason
    r = client.post(f"/v1/agent/plans/{big}/approve", json=why, headers=boss)
    assert r.status_code == 200 and r.json()["basis"] == "supervisor" and r.json()["approved_by"] == boss_name
    with db.transaction() as s:
        s.execute(update(Plan).where(Plan.plan_id == big).values(status="cancelled", open_slot=None))
    small = _pending_plan(db, cid, periods=6)
    r = client.post(f"/v1/agent/plans/{small}/approve", json={"reason": "六期，在权限内"}, headers=alice)
    assert r.status_code == 200 and r.json()["basis"] == "agent_within_limit"
    with db.transaction() as s:
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "plan.approve")).all()
        said = {(a.subject, a.actor, a.detail["role"], a.detail["reason"]) for a in audits}
    assert (big, boss_name, "supervisor", why["reason"]) in said
    assert (small, alice_name, "agent", "六期，在权限内") in said


def test_3_the_approval_rule_is_a_pure_function_of_role_claim_and_policy_limits() -> None:
    rules = ApprovalPolicy(agent_max_periods=12, agent_max_principal_fen=2_000_000)
    assert decide_approval(ApprovalFacts("supervisor", False, 60, 10**9), rules).allowed
    assert decide_approval(ApprovalFacts("agent", True, 12, 2_000_000), rules).basis == "agent_within_limit"
    assert decide_approval(ApprovalFacts("agent", True, 13, 100), rules).basis == "over_agent_limit"
    assert decide_approval(ApprovalFacts("agent", True, 6, 2_000_001), rules).basis == "over_agent_limit"
    assert decide_approval(ApprovalFacts("agent", False, 3, 100), rules).basis == "not_holding_conversation"
    with pytest.raises(PolicyError, match=r"approval\.agent_max_periods"):
        parse_policy((ROOT / "policy.yml").read_text(encoding="utf-8") + "\napproval: {agent_max_periods: 61}\n")


# ---- 4. a failed login says nothing about the username ----


def test_4_unknown_and_locked_usernames_answer_alike_and_the_lock_still_holds(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = agent(client, admin)
    work: list[str] = []
    for method in ("hash", "verify", "verify_and_update"):
        real = getattr(agents._hasher, method)
        monkeypatch.setattr(
            agents._hasher, method, lambda *a, _real=real, _m=method, **k: (work.append(_m), _real(*a, **k))[1]
        )

    def login(username: str, password: str) -> tuple[int, dict[str, Any], int]:
        before = len(work)
        r = client.post("/v1/agent/login", data={"username": username, "password": password})
        return r.status_code, r.json(), len(work) - before

    unknown = login(f"nobody-{uuid.uuid4().hex[:6]}", "correct horse 42")
    wrong = [login(name, "wrong password") for _ in range(5)]  # the fifth locks the account
    locked = login(name, "correct horse 42")  # the right password, while locked
    assert unknown[0] == 401 and unknown[1]["error"]["code"] == "login_failed"
    for answer in (*wrong, locked):
        assert answer[:2] == unknown[:2]  # same status, same body
    assert {unknown[2], locked[2], *(w[2] for w in wrong)} == {1}  # one Argon2 check each: the same work
    later = Clock.at(process_clock().now() + timedelta(minutes=16))
    client.app.dependency_overrides[clock_dep] = lambda: later  # type: ignore[attr-defined]
    assert client.post("/v1/agent/login", data={"username": name, "password": "correct horse 42"}).status_code == 200


# ---- 5. WeChat: a captured push is refused when old, and when its signature is used again ----


@pytest.fixture
def wx(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("WECHAT_TOKEN", WX_TOKEN)
    monkeypatch.setenv("WECHAT_ENCODING_AES_KEY", "")  # plain mode: the body is not covered by the signature
    client: TestClient = request.getfixturevalue("client")
    return client


WX_TOKEN = "wechat-test-token"


def _push(client: TestClient, openid: str, text: str, stamp: int, nonce: str) -> int:
    xml = push_xml(
        {"ToUserName": "gh_bank", "FromUserName": openid, "CreateTime": stamp, "MsgType": "text", "Content": text}
        | {"MsgId": str(uuid.uuid4().int)[:18]}
    )
    query = {"timestamp": str(stamp), "nonce": nonce, "signature": wechat_signature(WX_TOKEN, str(stamp), nonce)}
    return client.post(f"/v1/wechat/callback?{urlencode(query)}", content=xml.encode()).status_code


def test_5_old_pushes_and_reused_signatures_are_refused(wx: TestClient, db: Database) -> None:
    openid = f"o{uuid.uuid4().hex[:27]}"
    now = int(process_clock().now().timestamp())
    assert _push(wx, openid, "2001年的推送", 1_000_000_000, "n-2001") == 403  # signed in 2001
    assert _push(wx, openid, "六分钟前", now - 360, "n-old") == 403
    assert _push(wx, openid, "你好", now - 60, "n-1") == 200
    assert _push(wx, openid, "我要结清", now - 60, "n-1") == 403  # the same signature, a new MsgId and text
    with db.transaction() as s:
        kinds = s.scalars(select(WeChatPush.dedupe_key).where(WeChatPush.openid == openid)).all()
    assert len(kinds) == 1  # only the genuine push was stored


# ---- 6. API docs: from this machine under a strict CSP, or off; never a CDN ----


def test_6_docs_load_nothing_from_another_host(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    assert client.get("/openapi.json").status_code == 200  # the schema stays
    r = client.get("/docs")  # no Swagger UI files on this machine: off, rather than a CDN's
    assert r.status_code == 404 and "cdn" not in r.text and "http" not in r.text
    assert client.get("/redoc").status_code == 404
    for name, body in (("swagger-ui-bundle.js", "window.SwaggerUIBundle = function () {};"), ("swagger-ui.css", "")):
        (tmp_path / name).write_text(body)
    monkeypatch.setenv("API_DOCS_ASSETS", str(tmp_path))  # the operator points at swagger-ui-dist's files
    get_settings.cache_clear()
    r = client.get("/docs")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert "http" not in r.text.replace('lang="en"', "")  # every script and style from this origin
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/..%2F..%2Fsecrets.env").status_code == 404
    monkeypatch.setenv("API_DOCS", "off")
    get_settings.cache_clear()
    assert client.get("/docs").status_code == 404


# ---- 7. numbers said in Chinese numerals, spaced, dashed or full-width are masked too ----

SAID = {  # what a holder types -> what must not be left of it
    "一三八 零零零零 零零零二": "0000",
    "我的手机幺三八零零零零零零零二一直打不通": "零零零零",
    "电话：幺三八－零零零零－零零零两": "零零零",
    "１３８　００００　０００２": "００００",
    "卡号六二二二 零二一二 三四五六 七八九零": "七八九零",
    "身份证一一零一零一一九九零零三零七一二三X": "一二三X",
    "身份证后四位一二三四，卡号尾号六零零一": "六零零一",
    "卡号后四位：幺两三四": "幺两三四",
}


@pytest.mark.parametrize(("said", "secret"), list(SAID.items()))
def test_7_numbers_said_in_numerals_are_masked(said: str, secret: str) -> None:
    assert secret not in mask(said) and "*" in mask(said)


def test_7_the_stored_transcript_keeps_no_number_said_in_numerals(
    client: TestClient, admin: dict[str, str], web: WebChat
) -> None:
    cid = web.cid("numerals")
    web.post("numerals", "我的电话是一三八 零零零零 零零零二，身份证后四位一二三四")
    record = client.get(f"/v1/conversations/{cid}/transcript", headers=admin).json()
    said = [m["text"] for m in record["messages"] if m["sender"] == "user"]
    assert said == ["我的电话是138****0002，身份证后四位****"]


DIGIT_AS = {d: [d, chr(ord(d) + 0xFEE0), "零一二三四五六七八九"[int(d)]] for d in "0123456789"}
DIGIT_AS["0"].append("〇")
DIGIT_AS["1"].append("幺")
DIGIT_AS["2"].append("两")


@st.composite
def written_number(draw: st.DrawFn, digits: str) -> str:
    """`digits` as a person might type them: each digit as written or said, groups spaced or dashed."""
    seps = st.sampled_from(["", " ", "  ", "-", "－", "—", "\u3000"])
    out = []
    for i, d in enumerate(digits):
        if i in (3, 7, 11, 15):
            out.append(draw(seps))
        out.append(draw(st.sampled_from(DIGIT_AS[d])))
    return "".join(out)


@given(
    data=st.data(), middle=st.from_regex(r"[0-9]{4}", fullmatch=True), card=st.from_regex(r"6[0-9]{15}", fullmatch=True)
)
@settings(max_examples=150, deadline=None)
def test_7_any_mix_of_writings_leaves_no_number_readable(data: st.DataObject, middle: str, card: str) -> None:
    phone = f"139{middle}0002"
    said = f"我的号码是{data.draw(written_number(phone))}，卡号{data.draw(written_number(card))}，谢谢"
    masked = mask(said)
    read = read_digits(masked).translate(str.maketrans({chr(0x0660 + d): str(d) for d in range(10)}))
    read = re.sub(r"\D", "", unicodedata.normalize("NFKC", read))
    assert read == "1390002"  # 139****0002, and nothing of the card


# ---- 8. a holder ends a web chat session; an idle one ends by itself ----


def test_8_logout_ends_the_session_everywhere_at_once(client: TestClient, web: WebChat) -> None:
    cid = web.cid("leaving")
    assert web.post("leaving", "你好").status_code == 200
    auth = web.auth("leaving")
    token = auth["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/v1/chat/{cid}/ws", subprotocols=["bearer", token]) as ws:
        assert client.post("/v1/chat/sessions/logout", headers=auth).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()  # the page's socket closes at once
        assert closed.value.code == 4401
    assert web.post("leaving", "我现在欠多少钱").status_code == 401
    assert web.get("leaving").status_code == 401
    assert client.post("/v1/chat/sessions/logout", headers=auth).status_code == 401  # nothing left to end
    assert client.post("/v1/chat/sessions/logout").status_code == 401


def test_8_a_session_ends_after_its_idle_time_without_a_message(client: TestClient, web: WebChat) -> None:
    idle = timedelta(minutes=get_settings().web_session_idle_minutes)
    chat = client.app.state.chat  # type: ignore[attr-defined]
    start = process_clock().now()
    web.cid("busy"), web.cid("left")
    chat.clock = Clock.at(start + idle - timedelta(minutes=1))
    assert web.post("busy", "我想问一下").status_code == 200  # a message restarts the idle time
    chat.clock = Clock.at(start + idle + timedelta(minutes=1))
    assert web.get("busy").status_code == 200
    assert web.get("left").status_code == 401  # the tab left open on a shared computer
    assert web.post("left", "你好").status_code == 401
