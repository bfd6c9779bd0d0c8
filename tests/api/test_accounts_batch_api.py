"""POST /v1/accounts:batch: many accounts in one call, each checked as POST /v1/accounts checks
one, all or nothing."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.api.test_accounts_api import account_body


def _jsonl(rows: list[dict[str, object]]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


def test_admin_token_required(client: TestClient) -> None:
    assert client.post("/v1/accounts:batch", json=[account_body()]).status_code == 401


def test_a_json_array_is_imported_and_each_account_reads_as_one_imported_alone(
    client: TestClient, admin: dict[str, str]
) -> None:
    rows = [account_body(), account_body(flags=["dispute"]), account_body(phone="13900000003")]
    r = client.post("/v1/accounts:batch", json=rows, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() == {"rows": 3, "created": 3, "updated": 0}
    alone = account_body(flags=["dispute"])
    assert client.post("/v1/accounts", json=alone, headers=admin).status_code == 201
    batch_view = client.get(f"/v1/accounts/{rows[1]['account_id']}", headers=admin).json()
    alone_view = client.get(f"/v1/accounts/{alone['account_id']}", headers=admin).json()
    for view in (batch_view, alone_view):
        view.pop("account_id")
        for channel in ("sms", "calls", "third_party"):
            view["contact_preferences"].pop(f"{channel}_changed_at", None)
    assert batch_view == alone_view


def test_json_lines_with_bad_rows_import_nothing_and_name_each_line(client: TestClient, admin: dict[str, str]) -> None:
    good = account_body()
    rows = [
        good,
        account_body(phone="12345"),
        account_body(minimum_payment="99999.00"),
        good,
    ]
    body = _jsonl(rows[:2]) + b"\n\nnot json\n" + _jsonl(rows[2:])
    r = client.post("/v1/accounts:batch", content=body, headers={**admin, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "batch_rejected"
    assert error["details"]["rows"] == 5 and error["details"]["rejected_count"] == 4
    lines = [(x["line"], x["field"]) for x in error["details"]["rejected"]]
    assert lines == [(2, "phone"), (4, None), (5, "minimum_payment"), (6, "account_id")]
    assert client.get(f"/v1/accounts/{good['account_id']}", headers=admin).status_code == 404


def test_a_reimport_in_a_batch_is_the_single_routes_reimport(client: TestClient, admin: dict[str, str]) -> None:
    body = account_body()
    first = client.post("/v1/accounts", json=body, headers=admin).json()
    renamed = {**body, "holder_name": "李强强"}
    r = client.post("/v1/accounts:batch", json=[renamed], headers=admin)
    assert r.json() == {"rows": 1, "created": 0, "updated": 1}
    again = client.get(f"/v1/accounts/{body['account_id']}", headers=admin).json()
    assert again["holder_name"] == "李强强"
    assert (again["statement_balance"], again["amount_due"]) == (first["statement_balance"], first["amount_due"])


def test_not_an_array_and_an_empty_batch_are_refused(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post("/v1/accounts:batch", json=account_body(), headers=admin)
    assert r.status_code == 422 and r.json()["error"]["details"]["rejected"][0]["line"] == 0
    r = client.post("/v1/accounts:batch", json=[], headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"


def test_a_batch_may_be_larger_than_other_bodies(client: TestClient, admin: dict[str, str]) -> None:
    rows = [account_body() for _ in range(400)]  # about 120 KiB: over the 64 KiB of other routes
    r = client.post("/v1/accounts:batch", json=rows, headers=admin)
    assert r.status_code == 201 and r.json()["created"] == 400
    big = b"[" + b" " * (8 * 1024 * 1024) + b"]"
    assert client.post("/v1/accounts:batch", content=big, headers=admin).status_code == 413


def test_money_is_read_as_the_single_route_reads_it() -> None:
    from api.account_batch import fen_of
    from api.schemas import to_fen

    for yuan in ("0", "0.5", "0.05", "7.10", "12", "999999999999.99", "1234.5", "00012.30"):
        assert fen_of(yuan) == to_fen(yuan), yuan
