"""The API against its own schema: schemathesis's coverage, fuzzing and stateful phases, every
check, on a live gateway (Rasa down) over a fresh SQLite database.

Zero failures means: no 5xx, every response and status code as documented, every request the
schema allows accepted (or refused only for a documented reason such as 401/404/409) and every
request it forbids refused. The figures go to the log (`pytest -s`) and to FUZZ_REPORT when set.
Hooks (auth, and the rules across fields that JSON Schema cannot state) are in fuzz_hooks.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.auth import issue_token
from ledger import agents
from ledger.clock import process_clock
from ledger.db import Database
from settings import Settings
from tests.conftest import ROOT, fresh_schema

ADMIN = "fuzz-admin-token"
JWT_KEY = "fuzz-agent-key-that-is-long-enough-for-hs256"
SMS_SECRET = "fuzz-sms-dev-secret"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))  # per operation and phase: about 90 s on 2 cores
SEED = os.environ.get("FUZZ_SEED", "19")
ST = Path(sys.executable).with_name("st")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _agent_tokens(url: str, n: int) -> list[str]:
    """A supervisor and `n` of its tokens, issued as the gateway would (same key, same clock)."""
    settings = Settings(database_url=url, agent_jwt_key=JWT_KEY)
    clock = process_clock(settings.app_timezone)
    db = Database(url)
    try:
        with db.transaction() as s:
            agent = agents.create_agent(s, "fuzz.supervisor", "fuzz-password-1", "Fuzz", "admin", "supervisor")
            return [issue_token(s, agent, settings, clock) for _ in range(n)]
    finally:
        db.dispose()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    url = f"sqlite+pysqlite:///{tmp_path / 'fuzz.db'}"
    fresh_schema(url)
    tokens = _agent_tokens(url, 2 * EXAMPLES + 10)
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ADMIN_API_TOKEN": ADMIN,
        "AGENT_JWT_KEY": JWT_KEY,
        "RASA_URL": "http://127.0.0.1:9",  # nothing listens: Rasa and the actions are "down"
        "ACTION_SERVER_URL": "http://127.0.0.1:9",
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "SMS_PROVIDER": "outbox",
        "SMS_INBOUND_DEV_SECRET": SMS_SECRET,
        "BOT_RECOVERY_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    log = (tmp_path / "gateway.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail(f"the gateway did not start: {(tmp_path / 'gateway.log').read_text()[-2000:]}")
        yield base, tokens
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.fuzz
@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="runs once per suite, on its own SQLite gateway (the first pass)"
)
def test_the_api_matches_its_schema_under_fuzzing_and_stateful_sequences(
    gateway: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, tokens = gateway
    report = tmp_path / "schemathesis.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.api.fuzz_hooks",
        "FUZZ_ADMIN_TOKEN": ADMIN,
        "FUZZ_AGENT_TOKENS": json.dumps(tokens),
    }
    run = subprocess.run(
        [
            str(ST),
            "--no-color",
            "run",
            f"{base}/openapi.json",
            "--phases",
            os.environ.get("FUZZ_PHASES", "coverage,fuzzing,stateful"),
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            SEED,
            "--workers",
            "1",
            "--header",
            f"X-SMS-Dev-Secret: {SMS_SECRET}",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        cwd=tmp_path,  # its cache (.schemathesis/) goes with the test's files
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = run.stdout[run.stdout.rfind("SUMMARY") :] if "SUMMARY" in run.stdout else run.stdout[-3000:]
    print(summary)
    if os.environ.get("FUZZ_REPORT"):
        Path(os.environ["FUZZ_REPORT"]).write_text(run.stdout)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
