"""Scripted conversations kept as data (tests/conversations/*.yml), played against the real stack.

Each conversation names a persona, a channel and an account; its turns are what the holder types;
its checks are outcomes (ledger state, disclosure, replies present, key facts), never exact wording.
The format is described in tests/conversations/README.md.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import select

from api.channels import links
from ledger import conduct
from ledger.clock import process_clock
from ledger.db import transaction
from ledger.models import ContactAttempt
from ledger.money import fen_to_text, yuan_to_fen
from ledger.policy import load_policy
from tests.e2e.accounts import Holder, new_holder, view
from tests.e2e.conftest import Running

HERE = Path(__file__).resolve().parent
CHANNELS = ("web", "link", "sms", "wechat")
TURN_CHECKS = {"has", "has_any", "lacks", "pattern", "discloses", "buttons", "repeat_ok"}
OUTCOMES = {
    "plans",
    "deferment",
    "installment",
    "personalized",
    "promises",
    "complaints",
    "disputes",
    "contact",
    "mode",
}


@dataclass
class Turn:
    say: str
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass
class Conversation:
    id: str
    theme: str
    persona: str
    channel: str
    account: dict[str, Any]
    turns: list[Turn]
    outcome: dict[str, Any]
    campaign: bool = False  # an SMS reminder goes out before the holder's first turn (channel sms/link)


def load_all(folder: Path = HERE) -> list[Conversation]:
    """Every conversation of every theme file, checked for shape (a typo fails loudly, not silently)."""
    found: list[Conversation] = []
    ids: set[str] = set()
    for path in sorted(folder.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for raw in doc["conversations"]:
            conv = _parse(path.stem, raw)
            assert conv.id not in ids, f"{path.name}: conversation id {conv.id} used twice"
            ids.add(conv.id)
            found.append(conv)
    return found


def _parse(theme: str, raw: dict[str, Any]) -> Conversation:
    unknown = set(raw) - {"id", "persona", "channel", "account", "turns", "outcome", "campaign"}
    assert not unknown, f"{theme}/{raw.get('id')}: unknown keys {unknown}"
    channel = raw.get("channel", "web")
    assert channel in CHANNELS, f"{theme}/{raw['id']}: channel {channel!r} not one of {CHANNELS}"
    turns = []
    for t in raw["turns"]:
        if isinstance(t, str):
            turns.append(Turn(t))
            continue
        checks = {k: v for k, v in t.items() if k != "say"}
        assert set(checks) <= TURN_CHECKS, f"{theme}/{raw['id']}: unknown turn checks {set(checks) - TURN_CHECKS}"
        turns.append(Turn(str(t["say"]), checks))
    outcome = raw.get("outcome") or {}
    assert set(outcome) <= OUTCOMES, f"{theme}/{raw['id']}: unknown outcomes {set(outcome) - OUTCOMES}"
    return Conversation(
        id=raw["id"],
        theme=theme,
        persona=raw["persona"],
        channel=channel,
        account=raw.get("account") or {},
        turns=turns,
        outcome=outcome,
        campaign=bool(raw.get("campaign", channel == "link")),
    )


# ---------------------------------------------------------------- channels: one holder's side of each


class Web:
    def __init__(self, running: Running, link_token: str | None = None) -> None:
        self.running = running
        self.cid = running.open_session(link_token=link_token)
        opened: Any = running.messages(self.cid)["messages"]
        self.opening = [m["text"] for m in opened]

    def say(self, text: str) -> tuple[str, list[str]]:
        reply = self.running.say(self.cid, text)
        msgs: Any = reply["messages"]
        texts = "\n".join(m["text"] for m in msgs)
        buttons = [b.get("title", "") for m in msgs for b in (m.get("buttons") or [])]
        return texts, buttons


class Sms:
    def __init__(self, running: Running, phone: str, reminded: bool = False) -> None:
        self.running, self.phone = running, phone
        self.opening: list[str] = []
        if reminded:  # the campaign sends in the background: the holder replies to the SMS once it is there
            for _ in range(300):
                if self._outbox():
                    break
                time.sleep(0.1)
        self.opening = self._outbox()
        self.seen = len(self.opening)

    def _outbox(self) -> list[str]:
        r = httpx.get(
            f"{self.running.gateway}/v1/sms/outbox", params={"to": self.phone}, headers=self.running.admin, timeout=30
        )
        assert r.status_code == 200, r.text
        return [m["body"] for m in r.json()]

    def say(self, text: str) -> tuple[str, list[str]]:
        r = httpx.post(
            f"{self.running.gateway}/v1/sms/inbound",
            timeout=30,
            data={"From": f"+86{self.phone}", "To": "+8610690000", "Body": text, "MessageSid": f"SM{uuid.uuid4().hex}"},
            headers=self.running.sms_headers,
        )
        assert r.status_code == 200, r.text
        out = self._outbox()
        new, self.seen = out[self.seen :], len(out)
        return "\n".join(new), []


class WeChat:
    def __init__(self, running: Running) -> None:
        from tests.e2e.test_wechat_e2e import Follower  # the signed, encrypted pushes WeChat sends

        self.user = Follower(running)
        self.opening: list[str] = []

    def say(self, text: str) -> tuple[str, list[str]]:
        return self.user.says(text), []


def send_reminder(running: Running, database_url: str, holder: Holder, overdue_days: int) -> int:
    """A reminder campaign reaching this holder (its segment is the account's overdue days); the attempt id."""
    r = httpx.post(
        f"{running.gateway}/v1/campaigns",
        headers=running.admin,
        timeout=60,
        json={
            "name": "对话测试提醒",
            "segment": {"min_overdue_days": overdue_days, "max_overdue_days": overdue_days},
            "template": "reminder",
        },
    )
    assert r.status_code == 201, r.text
    with transaction(database_url) as s:
        pk = conduct.account_pk(s, holder.account_id)
        attempt_id = s.scalar(select(ContactAttempt.id).where(ContactAttempt.account_pk == pk))
    assert attempt_id is not None
    return int(attempt_id)


# ---------------------------------------------------------------- playing and checking


@dataclass
class Played:
    turns: int = 0
    handled: int = 0
    failures: list[str] = field(default_factory=list)


def _money(yuan: str) -> str:
    return fen_to_text(yuan_to_fen(yuan))


def _facts(running: Running, holder: Holder) -> dict[str, str]:
    account = view(running, holder)
    policy = load_policy(HERE.parents[1] / "policy.yml")
    spaced = f"{holder.phone[:3]} {holder.phone[3:7]} {holder.phone[7:]}"
    return {
        "phone": holder.phone,
        "phone_spaced": spaced,
        "phone_dashed": spaced.replace(" ", "-"),
        "phone_chinese": "".join("零一二三四五六七八九"[int(d)] for d in holder.phone),
        "phone_fullwidth": holder.phone.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        "id_last4": holder.id_last4,
        "card_last4": holder.card_last4,
        "credentials": holder.credentials(),
        "amount_due": _money(account["amount_due"]),
        "balance": _money(account["statement_balance"]),
        "minimum": _money(account["minimum_payment"]),
        "overdue_days": str(account["overdue_days"]),
        "hotline": policy.institution.hotline,
    }


def _fill(text: str, facts: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: facts.get(m.group(1), m.group(0)), text)


def _check_turn(
    turn: Turn, reply: str, buttons: list[str], previous: str | None, verified: bool, facts: dict[str, str]
) -> list[str]:
    problems = []
    if not reply.strip():
        problems.append("no reply")
    if previous is not None and reply.strip() and reply == previous and not turn.checks.get("repeat_ok"):
        problems.append("the same reply as the turn before")
    if not verified or turn.checks.get("discloses") is False:
        for fact in ("amount_due", "balance", "minimum"):
            if facts[fact] in reply:
                problems.append(f"discloses {fact} {facts[fact]} before verification")
        if re.search(r"逾期\s*\d+\s*天", reply):
            problems.append("discloses the overdue days before verification")
    seen = reply + "\n" + "\n".join(buttons)
    for want in turn.checks.get("has", []):
        if _fill(str(want), facts) not in seen:
            problems.append(f"lacks {_fill(str(want), facts)!r}")
    any_of = [_fill(str(w), facts) for w in turn.checks.get("has_any", [])]
    if any_of and not any(w in seen for w in any_of):
        problems.append(f"has none of {any_of}")
    for bad in turn.checks.get("lacks", []):
        if _fill(str(bad), facts) in reply:
            problems.append(f"says {_fill(str(bad), facts)!r}")
    pattern = turn.checks.get("pattern")
    if pattern and not re.search(_fill(str(pattern), facts), seen):
        problems.append(f"does not match /{pattern}/")
    if "buttons" in turn.checks and bool(buttons) != bool(turn.checks["buttons"]):
        problems.append("buttons expected" if turn.checks["buttons"] else "no buttons expected")
    return problems


def _check_outcome(conv: Conversation, account: dict[str, Any], last_mode: str | None) -> list[str]:
    problems = []
    live = [p for p in account["plans"] if p["status"] not in ("cancelled",)]
    want = conv.outcome
    if "plans" in want and len(live) != want["plans"]:
        problems.append(f"plans: {len(live)} in the ledger, expected {want['plans']}")
    for kind in ("deferment", "installment", "personalized"):
        if kind in want:
            has = any(p["type"] == kind for p in live)
            if has != bool(want[kind]):
                problems.append(f"{kind} plan {'recorded' if has else 'not recorded'}")
    if "promises" in want:
        open_ = [p for p in account["promises"] if p["status"] == "open"]
        if len(open_) != want["promises"]:
            problems.append(f"promises: {len(open_)} open in the ledger, expected {want['promises']}")
    for key in ("complaints", "disputes"):
        if key in want:
            n = len(account.get(key) or [])
            if (n > 0) != bool(want[key]):
                problems.append(f"{key}: {n} recorded")
    for chan, state in (want.get("contact") or {}).items():
        got = account["contact_preferences"].get(chan)
        if got != state:
            problems.append(f"contact {chan}: {got}, expected {state}")
    if "mode" in want and last_mode is not None and last_mode != want["mode"]:
        problems.append(f"mode {last_mode}, expected {want['mode']}")
    return problems


def play(conv: Conversation, running: Running, database_url: str) -> tuple[Played, list[str]]:
    """Play one conversation; returns what was handled and the transcript (for the failure message)."""
    account = {"overdue_days": 40, **conv.account}
    holder = new_holder(running, **account)
    facts = _facts(running, holder)
    token = None
    if conv.campaign:
        attempt = send_reminder(running, database_url, holder, account["overdue_days"])
        if conv.channel == "link":
            token = links.issue(attempt, running.secrets["LINK_SIGNING_KEY"], process_clock().now())
    channel: Web | Sms | WeChat
    if conv.channel in ("web", "link"):
        channel = Web(running, token)
    elif conv.channel == "sms":
        channel = Sms(running, holder.phone, reminded=conv.campaign)
    else:
        channel = WeChat(running)
    transcript = [f"[{conv.channel}] {t}" for t in channel.opening]
    played = Played()
    previous: str | None = None
    verified = False
    for number, turn in enumerate(conv.turns, 1):
        said = _fill(turn.say, facts)
        reply, buttons = channel.say(said)
        transcript += [f"holder: {said}", f"bot:    {reply}" + (f"  [{' | '.join(buttons)}]" if buttons else "")]
        problems = _check_turn(turn, reply, buttons, previous, verified, facts)
        if "验证通过" in reply or "驗證通過" in reply:
            verified = True
        played.turns += 1
        if problems:
            played.failures += [f"turn {number} ({said}): {p}" for p in problems]
        else:
            played.handled += 1
        previous = reply
    last_mode = None
    if conv.channel in ("web", "link"):
        last_mode = str(running.messages(channel.cid).get("mode", "")) or None  # type: ignore[union-attr]
    played.failures += [f"outcome: {p}" for p in _check_outcome(conv, view(running, holder), last_mode)]
    return played, transcript
