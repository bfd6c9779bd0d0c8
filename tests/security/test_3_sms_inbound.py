"""Finding 3: with the outbox provider, POST /v1/sms/inbound took any From without any check."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from ledger.db import Database
from ledger.models import Message
from tests.api.conftest import SMS_DEV_SECRET


def _count(db: Database, sid: str) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(Message).where(Message.external_id == sid)) or 0


def _form() -> dict[str, str]:
    return {"From": "+8613800000002", "To": "+8610690000", "Body": "TD", "MessageSid": f"SM{uuid.uuid4().hex}"}


def test_inbound_sms_without_the_dev_secret_is_refused_and_stores_nothing(client: TestClient, db: Database) -> None:
    client.headers.pop("X-SMS-Dev-Secret")  # a stranger on the network, not our local phone
    form = _form()
    r = client.post("/v1/sms/inbound", data=form)
    assert r.status_code == 403 and _count(db, form["MessageSid"]) == 0
    r = client.post("/v1/sms/inbound", data=form, headers={"X-SMS-Dev-Secret": "guess"})
    assert r.status_code == 403 and _count(db, form["MessageSid"]) == 0
    r = client.post("/v1/sms/inbound", data=form, headers={"X-SMS-Dev-Secret": SMS_DEV_SECRET})
    assert r.status_code == 200 and _count(db, form["MessageSid"]) == 1


def test_without_a_configured_secret_every_inbound_sms_is_refused(
    monkeypatch: pytest.MonkeyPatch, client: TestClient, db: Database
) -> None:
    client.app.state.chat.settings = client.app.state.chat.settings.model_copy(  # type: ignore[attr-defined]
        update={"sms_inbound_dev_secret": SecretStr("")}
    )
    form = _form()
    r = client.post("/v1/sms/inbound", data=form, headers={"X-SMS-Dev-Secret": ""})
    assert r.status_code == 403 and _count(db, form["MessageSid"]) == 0
