"""The stack supervisor's command lines and generated files."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest
import yaml

from scripts.secrets_file import NAMES, ensure_secrets
from scripts.stack import Stack, endpoints


def test_a_token_starting_with_a_dash_reaches_rasa_intact(tmp_path: Path) -> None:
    """Regression: a generated secret beginning with "-" was read by Rasa's argparse as an option.
    The token is no longer on the command line (issue 16): bot/serve.py adds it in-process."""
    from bot.serve import rasa_argv

    argv = Stack(var=tmp_path, database_url="sqlite://").commands({"RASA_AUTH_TOKEN": "-abc123"}, tmp_path / "e.yml")
    assert "-abc123" not in " ".join(argv["rasa"]) and argv["rasa"][1:3] == ["-m", "bot.serve"]
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth-token")
    known, _ = parser.parse_known_args(rasa_argv(argv["rasa"][3:], "-abc123")[1:])
    assert known.auth_token == "-abc123"


def test_secrets_are_generated_once_private_and_overridable(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "secrets.env"
    first = ensure_secrets(path)
    assert set(first) == set(NAMES) and all(len(v) >= 32 for v in first.values())  # WeChat caps its Token at 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secrets(path) == first
    monkeypatch.setenv("ADMIN_API_TOKEN", "from-env")
    assert ensure_secrets(path)["ADMIN_API_TOKEN"] == "from-env"


def test_endpoints_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RASA_TRACKER_CACHE", raising=False)
    conf = yaml.safe_load(endpoints(tmp_path, 6055, None, None).read_text())
    assert conf["tracker_store"]["dialect"] == "sqlite" and "lock_store" not in conf
    assert conf["action_endpoint"]["url"] == "http://127.0.0.1:6055/webhook"
    conf = yaml.safe_load(
        endpoints(tmp_path, 5055, "postgresql://u:p@127.0.0.1:5432/rasa", "redis://127.0.0.1:6379/2", 300).read_text()
    )
    assert conf["tracker_store"] == {
        "type": "bot.tracker_store.CachedSQLTrackerStore",
        "dialect": "postgresql",
        "url": "127.0.0.1",
        "port": 5432,
        "db": "rasa",
        "username": "u",
        "password": "p",
        "cache_size": 300,
    }
    assert conf["lock_store"]["type"] == "bot.lock_store.AsyncRedisLockStore" and conf["lock_store"]["db"] == 2
    # Rasa's own stores, for a benchmark to compare with
    pg, rd = "postgresql://u:p@127.0.0.1:5432/rasa", "redis://127.0.0.1:6379/2"
    rasas = endpoints(tmp_path, 5055, pg, rd, env={"RASA_ASYNC_STORES": "0"})
    conf = yaml.safe_load(rasas.read_text())
    assert conf["lock_store"]["type"] == "redis" and conf["tracker_store"]["driver"] == "sqlalchemy"


def test_the_tracker_cache_size_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_TRACKER_CACHE", "500")
    conf = yaml.safe_load(endpoints(tmp_path, 5055, None, None).read_text())
    assert conf["tracker_store"]["cache_size"] == 500
    monkeypatch.setenv("RASA_TRACKER_CACHE", "lots")
    with pytest.raises(ValueError, match="RASA_TRACKER_CACHE"):
        endpoints(tmp_path, 5055, None, None)
