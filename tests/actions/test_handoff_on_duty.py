"""The two handoffs the bot makes on its own (an identity lock-out, a personalised plan to approve)
ask who is on duty like any other: parked only when someone has room, otherwise the holder hears
when a person will look and the bot keeps serving. They used to park whoever was there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from actions.agree import ActionConfirm
from actions.identity import ActionVerifyIdentity
from actions.negotiate import ActionOfferInstallment
from ledger import accounts, agents, conversations, handoff
from ledger.clock import process_clock
from ledger.db import transaction
from ledger.models import Agent, HandoffTicket
from tests.actions.test_actions import _settings, run, tracker, verified_conversation  # noqa: F401  (autouse fixture)
from tests.actions.test_arrangements import pending_of
from tests.actions.test_arrangements import tracker as offer_tracker
from tests.factories import record

NOBODY_SAID = {"utter_handoff_nobody", "utter_handoff_off_duty", "utter_handoff_busy"}


@pytest.fixture
def nobody_available(database_url: str) -> None:
    with transaction(database_url) as s:
        s.execute(update(Agent).values(presence="away"))


@pytest.fixture
def agents_available(database_url: str) -> Iterator[None]:
    """Five agents of the team on duty at the tests' clock (a Monday 10:00), away again afterwards."""
    names = [f"duty-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    with transaction(database_url) as s:
        for name in names:
            agents.create_agent(s, name, "a-long-password", name, "test")
            handoff.set_presence(s, name, "available", process_clock().now())
    yield
    with transaction(database_url) as s:
        s.execute(update(Agent).where(Agent.username.in_(names)).values(presence="away"))


def paused(events: list[object]) -> bool:
    return any(isinstance(e, dict) and e.get("event") == "pause" for e in events)


def _locked_out(database_url: str) -> tuple[str, list[dict[str, object]], list[object]]:
    """A caller on a registered phone who gives wrong digits until verification locks."""
    rec = record(phone=f"139{uuid.uuid4().int % 10**8:08d}")
    cid = f"lock-{uuid.uuid4().hex[:10]}"
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
        conversations.claim_phone(s, conversations.get_or_create(s, cid, "web"), rec.phone)
    wrong = [{"entity": "id_last4", "value": "0000"}, {"entity": "card_last4", "value": "0000"}]
    msgs: list[dict[str, object]] = []
    events: list[object] = []
    for _ in range(conversations.MAX_VERIFY_FAILURES):
        msgs, events = run(ActionVerifyIdentity(), tracker(cid, "0000 0000", "provide_identity", wrong))
    return cid, msgs, events


def _ticket(database_url: str, cid: str) -> tuple[bool, str]:
    with transaction(database_url) as s:
        conv = conversations.find(s, cid)
        assert conv is not None
        ticket = s.scalar(select(HandoffTicket).where(HandoffTicket.conversation_pk == conv.id))
        assert ticket is not None and ticket.status == "waiting"  # agents see it in every case
        return ticket.parked, conv.mode


def _agree_to_sixty(database_url: str) -> tuple[str, list[dict[str, object]], list[object]]:
    cid, _ = verified_conversation(database_url, overdue_days=100)  # M4: personalised up to 60 periods
    offer = tracker(cid, "能不能分60期", "request_installment", [{"entity": "installments", "value": "60"}])
    _, events = run(ActionOfferInstallment(), offer)
    confirm = offer_tracker(cid, "好的", "affirm", pending=pending_of(events))
    msgs, events = run(ActionConfirm(), confirm)
    return cid, msgs, events


# (how the holder gets there, what the bot says first, what it says with an agent on duty)
HANDOFFS = {
    "lock-out": (_locked_out, "utter_verify_locked_later", "utter_verify_locked"),
    "plan-approval": (_agree_to_sixty, "utter_personalized_submitted", "utter_personalized_submitted"),
}


@pytest.mark.usefixtures("nobody_available")
@pytest.mark.parametrize("handoff_of", HANDOFFS)
def test_with_nobody_on_duty_the_holder_is_told_and_the_bot_keeps_serving(database_url: str, handoff_of: str) -> None:
    reach, first, _ = HANDOFFS[handoff_of]
    cid, msgs, events = reach(database_url)
    said = [m["response"] for m in msgs]
    assert said[0] == first and NOBODY_SAID & set(said)
    assert not paused(events)
    assert _ticket(database_url, cid) == (False, "bot")


@pytest.mark.usefixtures("agents_available")
@pytest.mark.parametrize("handoff_of", HANDOFFS)
def test_with_an_agent_on_duty_the_holder_waits_for_them(database_url: str, handoff_of: str) -> None:
    reach, _, parked = HANDOFFS[handoff_of]
    cid, msgs, events = reach(database_url)
    assert [m["response"] for m in msgs] == [parked]
    assert paused(events)
    assert _ticket(database_url, cid) == (True, "human")


def _callback_said(cid: str, text: str, at: str, day: str | None) -> list[dict[str, object]]:
    from actions.handoff import ActionHandoff

    entities: list[dict[str, object]] = [{"entity": "callback_at", "value": at}]
    if day:
        entities.append({"entity": "date", "value": "明天", "additional_info": {"iso": day}})
    msgs, _ = run(ActionHandoff(), tracker(cid, text, "request_human", entities))
    return msgs


def test_a_typed_callback_time_is_booked_on_the_ticket(database_url: str) -> None:
    """ "明天下午三点打给我": the offered buttons were understood, a typed time was not."""
    from datetime import timedelta

    cid, _ = verified_conversation(database_url)
    tomorrow = process_clock().today() + timedelta(days=1)
    msgs = _callback_said(cid, "明天下午三点打给我", "15:00", tomorrow.isoformat())
    assert [m["response"] for m in msgs] == ["utter_callback_recorded"] and "15:00" in str(msgs[0]["when"])
    with transaction(database_url) as s:
        conv = conversations.find(s, cid)
        assert conv is not None
        ticket = s.scalar(select(HandoffTicket).where(HandoffTicket.conversation_pk == conv.id))
        assert ticket is not None and ticket.callback_at is not None
        local = ticket.callback_at.astimezone(process_clock().now().tzinfo)
        assert (local.date(), local.hour, local.minute) == (tomorrow, 15, 0)


def test_a_typed_callback_time_outside_the_contact_window_is_offered_times_instead(database_url: str) -> None:
    cid, _ = verified_conversation(database_url)
    msgs = _callback_said(cid, "晚上十一点打给我", "23:00", None)
    assert [m["response"] for m in msgs] == ["utter_callback_choose"] and msgs[0]["buttons"]
