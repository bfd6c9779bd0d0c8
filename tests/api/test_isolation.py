"""The API tests roll back: what a test and the gateway it drives write is gone when it ends,
so tests neither see each other's data nor leave any in the shared database."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.deps import database_dep
from api.main import create_app
from ledger.db import Database
from ledger.models import Account
from settings import get_settings
from tests.api.conftest import ADMIN
from tests.api.test_accounts_api import account_body
from tests.conftest import joined_database


def _stored(database_url: str, account_id: str) -> bool:
    db = Database(database_url)
    try:
        with db.transaction(readonly=True) as s:
            return s.scalar(select(Account.id).where(Account.account_id == account_id)) is not None
    finally:
        db.dispose()


def test_an_account_the_gateway_committed_is_gone_after_the_test(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ADMIN_API_TOKEN", ADMIN)
    monkeypatch.setenv("BOT_RECOVERY_SECONDS", "0")
    get_settings.cache_clear()
    body = account_body(account_id=f"iso-{uuid.uuid4().hex[:8]}")
    with joined_database(engine, database_url) as db:
        app = create_app(db)
        app.dependency_overrides[database_dep] = lambda: db
        with TestClient(app) as client:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            assert client.post("/v1/accounts", json=body, headers=admin).status_code == 201
            assert client.get(f"/v1/accounts/{body['account_id']}", headers=admin).status_code == 200
        with db.transaction() as s:  # the test sees what the gateway wrote
            assert s.scalar(select(Account.id).where(Account.account_id == body["account_id"])) is not None
    get_settings.cache_clear()
    assert not _stored(database_url, body["account_id"])
