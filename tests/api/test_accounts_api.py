"""Admin account API: auth, validation errors in the contract's shape, view, payments."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from ledger.db import Database


def account_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "account_id": f"api-{uuid.uuid4().hex[:8]}",
        "holder_name": "李强",
        "phone": "+86 139-0000-0002",
        "id_last4": "234x",
        "card_last4": "6002",
        "credit_limit": "20000.00",
        "statement_balance": "10000.00",
        "minimum_payment": "1000.00",
        "statement_date": "2026-03-05",
        "due_date": "2026-03-25",
        "paid_since_statement": "0.00",
    }
    body.update(overrides)
    return body


def test_admin_token_required(client: TestClient) -> None:
    assert client.post("/v1/accounts", json=account_body()).status_code == 401
    r = client.get("/v1/accounts/x", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_create_and_read(client: TestClient, admin: dict[str, str]) -> None:
    body = account_body()
    r = client.post("/v1/accounts", json=body, headers=admin)
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["phone"] == "13900000002" and view["id_last4"] == "234X"
    assert view["statement_balance"] == "10000.00"
    parts = view["breakdown"]
    total = sum(int(parts[k].replace(".", "")) for k in ("principal", "interest", "late_fee"))
    assert f"{total // 100}.{total % 100:02d}" == view["amount_due"] == parts["total"]
    again = client.get(f"/v1/accounts/{body['account_id']}", headers=admin).json()
    assert again["amount_due"] == view["amount_due"] and again["bucket"] == view["bucket"]


def test_validation_errors_have_the_contract_shape(client: TestClient, admin: dict[str, str]) -> None:
    for bad in (
        {"phone": "12345"},
        {"statement_balance": "12.345"},
        {"statement_balance": 12.5},
        {"due_date": "2026-02-30"},
        {"flags": ["vip"]},
    ):
        r = client.post("/v1/accounts", json=account_body(**bad), headers=admin)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "validation_failed"
    r = client.post("/v1/accounts", json=account_body(minimum_payment="20000.00"), headers=admin)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "minimum_payment"
    r = client.post("/v1/accounts", content=b'{"account_id": ', headers={**admin, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = client.get("/v1/accounts/nope", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_payment_is_posted_once(client: TestClient, admin: dict[str, str]) -> None:
    body = account_body()
    before = client.post("/v1/accounts", json=body, headers=admin).json()
    pay = {"amount": "500.00", "paid_at": "2026-04-01T10:00:00+08:00", "reference": f"bank-{uuid.uuid4().hex}"}
    first = client.post(f"/v1/accounts/{body['account_id']}/payments", json=pay, headers=admin)
    second = client.post(f"/v1/accounts/{body['account_id']}/payments", json=pay, headers=admin)
    assert (first.status_code, second.status_code) == (201, 200)  # the same payment again: nothing new
    assert first.json()["created"] is True and second.json()["created"] is False
    outstanding = [int(x.replace(".", "")) for x in (before["outstanding"], second.json()["account"]["outstanding"])]
    assert outstanding[1] <= outstanding[0] - 50_000 + 2_000  # 500 paid; at most a few days' interest accrued since
    naive = {**pay, "paid_at": "2026-04-01T10:00:00", "reference": "naive"}
    r = client.post(f"/v1/accounts/{body['account_id']}/payments", json=naive, headers=admin)
    assert r.status_code == 422


def test_the_holders_time_zone_comes_from_the_import(client: TestClient, admin: dict[str, str]) -> None:
    default = client.post("/v1/accounts", json=account_body(), headers=admin).json()
    assert default["timezone"] == "Asia/Shanghai"
    urumqi = client.post("/v1/accounts", json=account_body(timezone="Asia/Urumqi"), headers=admin)
    assert urumqi.status_code == 201 and urumqi.json()["timezone"] == "Asia/Urumqi"
    bad = client.post("/v1/accounts", json=account_body(timezone="Mars/Olympus"), headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "timezone"


def test_the_view_says_who_asked_for_a_contact_preference_and_when(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ledger import conduct
    from ledger.clock import Clock

    number = f"1370{uuid.uuid4().int % 10**7:07d}"
    first, second = account_body(phone=number), account_body(phone=number)
    for body in (first, second):
        assert client.post("/v1/accounts", json=body, headers=admin).status_code == 201
    asked = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    with db.transaction() as s:
        holder = conduct.cardholder_of(s, first["account_id"])
        conduct.set_preference(s, holder, "calls", "opted_out", asked, actor=f"sms-{number}", source="sms")
    prefs = client.get(f"/v1/accounts/{second['account_id']}", headers=admin).json()["contact_preferences"]
    assert prefs["calls"] == "opted_out" and prefs["sms"] == "allowed"  # the person's, on the other card
    assert prefs["calls_changed_at"].startswith("2026-04-05T")
    assert prefs["calls_asked_by"] == f"sms-{number[:3]}****{number[-4:]}"


def _account_with_a_plan(
    client: TestClient, admin: dict[str, str], db: Database, key: str
) -> tuple[dict[str, Any], str]:
    """A new account and a 3-period plan agreed on 5 April 2026 (the body, and the plan's id)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ledger import negotiation
    from ledger.clock import Clock
    from ledger.policy import cached_policy
    from settings import get_settings

    body = account_body()
    client.post("/v1/accounts", json=body, headers=admin)
    policy = cached_policy(str(get_settings().policy_path))
    agreed = Clock.at(datetime(2026, 4, 5, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    with db.transaction() as s:
        sit = negotiation.situation(s, body["account_id"], policy, agreed)
        offer = negotiation.offer_for(sit, "installment", agreed.today(), periods=3)
        plan, _ = negotiation.create_plan(s, body["account_id"], offer, "api", f"{key}-{body['account_id']}", agreed)
        return body, plan.plan_id


def test_view_shows_a_plans_life_and_credit(client: TestClient, admin: dict[str, str], db: Database) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from api.deps import clock_dep
    from ledger.clock import Clock

    body, _ = _account_with_a_plan(client, admin, db, "api")
    later = Clock.at(datetime(2026, 5, 10, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    client.app.dependency_overrides[clock_dep] = lambda: later  # type: ignore[attr-defined]
    try:
        view = client.get(f"/v1/accounts/{body['account_id']}", headers=admin).json()
        [plan] = view["plans"]
        # Row 1 (5 May) unpaid past the 3 grace days: missed; the account is 5 days overdue on it.
        assert [r["status"] for r in plan["schedule"]] == ["missed", "due", "due"]
        assert (view["overdue_days"], view["amount_due"], view["credit"]) == (5, "3478.33", "0.00")
        assert (plan["next_due_date"], plan["next_due_amount"]) == ("2026-06-05", "3478.33")
        assert (plan["paid_periods"], plan["missed_periods"], plan["remaining"]) == (0, 1, "10435.00")
        pay = {"amount": "10500.00", "paid_at": "2026-05-10T10:00:00+08:00", "reference": f"all-{body['account_id']}"}
        after = client.post(f"/v1/accounts/{body['account_id']}/payments", json=pay, headers=admin).json()["account"]
        [plan] = after["plans"]
        assert plan["status"] == "completed" and plan["remaining"] == "0.00"
        # 10,435.00 asked; rows 2-3 not yet due, their 75-yuan fees waived on early payoff: 215.00 credit.
        assert after["credit"] == "215.00" and after["amount_due"] == "0.00"
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]


def test_openapi_names_the_agreement_fields(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"next_due_date", "next_due_amount", "paid_periods", "missed_periods", "remaining"} <= set(
        schemas["PlanPublic"]["properties"]
    )
    assert set(schemas["ScheduleRowPublic"]["properties"]) >= {"status", "paid"}
    assert "credit" in schemas["AccountPublic"]["properties"]


@contextmanager
def frozen_at(client: TestClient, day: str, hour: int = 10) -> Iterator[None]:
    """The gateway's "now" at `day` `hour`:00 Asia/Shanghai for the block."""
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from api.deps import clock_dep
    from ledger.clock import Clock

    d = date.fromisoformat(day)
    at = Clock.at(datetime(d.year, d.month, d.day, hour, tzinfo=ZoneInfo("Asia/Shanghai")))
    client.app.dependency_overrides[clock_dep] = lambda: at  # type: ignore[attr-defined]
    try:
        yield
    finally:
        client.app.dependency_overrides.pop(clock_dep, None)  # type: ignore[attr-defined]


def test_a_reference_reused_with_another_amount_is_409(client: TestClient, admin: dict[str, str]) -> None:
    body = account_body()
    client.post("/v1/accounts", json=body, headers=admin)
    url = f"/v1/accounts/{body['account_id']}/payments"
    pay = {"amount": "500.00", "paid_at": "2026-04-01T10:00:00+08:00", "reference": f"bank-{uuid.uuid4().hex}"}
    assert client.post(url, json=pay, headers=admin).status_code == 201
    r = client.post(url, json={**pay, "amount": "600.00"}, headers=admin)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "payment_conflict"
    assert (error["details"]["recorded_amount"], error["details"]["sent_amount"]) == ("500.00", "600.00")
    view = client.get(f"/v1/accounts/{body['account_id']}", headers=admin).json()
    assert view["paid_since_statement"] == "0.00" and int(view["outstanding"].replace(".", "")) > 900_000


def test_payments_dated_in_the_future_or_before_the_statement_are_422(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = account_body()
    client.post("/v1/accounts", json=body, headers=admin)
    url = f"/v1/accounts/{body['account_id']}/payments"
    with frozen_at(client, "2026-04-05"):
        ahead = {"amount": "100.00", "paid_at": "2026-04-05T11:00:00+08:00", "reference": "ahead"}
        r = client.post(url, json=ahead, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "paid_at"
        early = {"amount": "100.00", "paid_at": "2026-03-04T23:00:00+08:00", "reference": "early"}
        r = client.post(url, json=early, headers=admin)
        assert r.status_code == 422
        error = r.json()["error"]
        assert error["details"]["statement_date"] == "2026-03-05" and "before the current statement" in error["message"]
        # Neither was kept: the same references may be posted once corrected.
        ok = client.post(url, json={**early, "paid_at": "2026-03-05T09:00:00+08:00"}, headers=admin)
        assert ok.status_code == 201 and ok.json()["account"]["outstanding"] != ""


def test_a_new_statement_while_a_plan_runs_is_409(client: TestClient, admin: dict[str, str], db: Database) -> None:
    body, plan_id = _account_with_a_plan(client, admin, db, "ri")
    renewed = {**body, "statement_date": "2026-04-05", "due_date": "2026-04-25", "statement_balance": "10210.00"}
    r = client.post("/v1/accounts", json=renewed, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["details"]["plan_id"] == plan_id
    moved = client.post("/v1/accounts", json={**body, "holder_name": "李强强"}, headers=admin)
    assert moved.status_code == 201 and moved.json()["holder_name"] == "李强强"


def test_the_breakdown_says_when_grace_or_tolerance_applied(client: TestClient, admin: dict[str, str]) -> None:
    body = account_body()
    client.post("/v1/accounts", json=body, headers=admin)
    with frozen_at(client, "2026-03-27"):  # two days after the due date, nothing paid
        view = client.get(f"/v1/accounts/{body['account_id']}", headers=admin).json()
    assert (view["overdue_days"], view["bucket"]) == (0, "M0")
    assert view["breakdown"]["grace_applied"] is True and view["breakdown"]["late_fee"] == "0.00"
    tiny = account_body(statement_balance="0.01", minimum_payment="0.01")
    client.post("/v1/accounts", json=tiny, headers=admin)
    view = client.get(f"/v1/accounts/{tiny['account_id']}", headers=admin).json()  # a year later
    assert (view["overdue_days"], view["bucket"], view["outstanding"]) == (0, "M0", "0.01")
    assert view["breakdown"]["tolerance_applied"] is True and view["amount_due"] == "0.01"


def test_the_import_takes_a_posting_date_for_the_documented_example(client: TestClient, admin: dict[str, str]) -> None:
    body = account_body(interest_start="2026-03-01")
    assert client.post("/v1/accounts", json=body, headers=admin).json()["interest_start"] == "2026-03-01"
    with frozen_at(client, "2026-04-04"):  # the view counts every day to the end of today: 1 Mar - 4 Apr
        view = client.get(f"/v1/accounts/{body['account_id']}", headers=admin).json()
    assert (view["breakdown"]["interest"], view["breakdown"]["late_fee"]) == ("175.00", "50.00")
    late = client.post("/v1/accounts", json=account_body(interest_start="2026-03-06"), headers=admin)
    assert late.status_code == 422 and late.json()["error"]["details"]["field"] == "interest_start"
