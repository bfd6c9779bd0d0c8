"""Domain errors carry no HTTP knowledge; api/errors.py gives each its status and the contract's body."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install
from ledger.agents import AccountLocked, LoginFailed
from ledger.compliance import ContactNotAllowed
from ledger.errors import Conflict, LedgerError, NotFound, OfferNotAllowed, PolicyError, ValidationFailed
from ledger.wechat import OutsideServiceWindow

# The statuses the public API has always answered with (CHANGELOG.md).
EXPECTED = [
    (ValidationFailed("bad date", field="due_date"), 422, "validation_failed"),
    (NotFound("no such account", account_id="x"), 404, "not_found"),
    (Conflict("the account already has an open plan"), 409, "conflict"),
    (OfferNotAllowed("7 periods are not offered", nearest=6), 422, "offer_not_allowed"),
    (PolicyError("policy.yml:3: bad"), 500, "policy_invalid"),
    (LoginFailed("wrong username or password"), 401, "login_failed"),
    (AccountLocked("locked for 15 minutes"), 423, "account_locked"),
    (ContactNotAllowed("quiet hours", reason="quiet_hours", next_window=None), 409, "contact_not_allowed"),
    (OutsideServiceWindow("48 hours have passed"), 409, "outside_service_window"),
    (LedgerError("something the ledger refused"), 400, "ledger_error"),
]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install(app)

    @app.get("/raise/{index}")
    def _raise(index: int) -> None:
        raise EXPECTED[index][0]

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("index", range(len(EXPECTED)), ids=[e[2] for e in EXPECTED])
def test_each_domain_error_keeps_its_status_and_body(client: TestClient, index: int) -> None:
    exc, status, code = EXPECTED[index]
    r = client.get(f"/raise/{index}")
    assert r.status_code == status
    assert r.json() == {"error": {"code": code, "message": exc.message, "details": exc.details}}


def test_the_ledger_errors_know_no_http_status() -> None:
    for exc, _, _ in EXPECTED:
        assert not hasattr(exc, "status"), type(exc).__name__
