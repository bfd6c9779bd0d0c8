"""The Rasa patches apply only to the release they were written for; on any other, Rasa's own
code runs (and the log says so), with the tracker rows still scrubbed."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
import rasa
import sqlalchemy as sa
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import SQLTrackerStore
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered

from bot import speedups
from bot.tracker_store import CachedSQLTrackerStore

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))


@pytest.fixture
def another_rasa(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(rasa, "__version__", "3.6.22")
    return "3.6.22"


def test_this_is_the_release_the_patches_were_written_for() -> None:
    assert rasa.__version__ == speedups.WRITTEN_FOR  # a Rasa upgrade must look at them again


def test_on_another_rasa_the_speedups_patch_nothing(
    another_rasa: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(speedups, "_installed", False)
    validate, graph_run = RemoteAction._validate_action_result, DaskGraphRunner.run
    with caplog.at_level(logging.WARNING, logger="bot.speedups"):
        speedups.install()
    assert RemoteAction._validate_action_result is validate and DaskGraphRunner.run is graph_run
    assert f"this is Rasa {another_rasa}: using Rasa's own code" in caplog.text


async def _turns(store: SQLTrackerStore, sender: str) -> None:
    for text in ("你好", "身份证后四位3200"):
        tracker = await store.get_or_create_tracker(sender)
        entities = [{"entity": "id_last4", "value": "3200", "start": 6, "end": 10}] if "3200" in text else []
        tracker.update(UserUttered(text, {"name": "inform", "confidence": 0.9}, entities))
        tracker.update(SlotSet("id_last4", "3200" if entities else None))
        tracker.update(ActionExecuted("utter_greet"))
        tracker.update(BotUttered(f"回复：{text[:2]}"))
        tracker.update(ActionExecuted("action_listen"))
        await store.save(tracker)


def _rows(db: Path) -> list[dict[str, object]]:
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        rows = conn.execute(sa.text("select data from events order by id")).all()
    return [{k: v for k, v in json.loads(r[0]).items() if k != "timestamp"} for r in rows]


def test_on_another_rasa_the_tracker_store_is_rasas_own_with_the_rows_scrubbed(
    another_rasa: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.speedups"):
        fallback = CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "a.db"))
    assert "bot.tracker_store was written for Rasa" in caplog.text and not fallback.fast
    asyncio.run(_turns(fallback, "v1"))
    assert fallback.hits == 0 and not fallback._kept  # nothing kept in memory: every turn reads the rows
    rows = _rows(tmp_path / "a.db")
    assert "3200" not in json.dumps(rows, ensure_ascii=False)
    # Row for row what the fast store writes on the release it was written for.
    rasa.__version__ = speedups.WRITTEN_FOR
    fast = CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "b.db"))
    assert fast.fast
    asyncio.run(_turns(fast, "v1"))
    assert fast.hits == 1
    assert _rows(tmp_path / "b.db") == rows
