"""Finding 4: Rasa and the action server trusted any local caller; RASA_AUTH_TOKEN was visible in `ps`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml

from scripts.stack import Stack, endpoints
from tests.e2e.conftest import Running

SECRETS = {
    "RASA_AUTH_TOKEN": "-rasa-token-value",
    "ADMIN_API_TOKEN": "admin-token-value",
    "RASA_CHANNEL_SECRET": "channel-secret-value",
    "ACTION_SERVER_SECRET": "action-secret-value",
    "LINK_SIGNING_KEY": "link-key-value",
    "AGENT_JWT_KEY": "jwt-key-value",
    "SMS_INBOUND_DEV_SECRET": "sms-secret-value",
}


def test_no_secret_is_on_any_command_line(tmp_path: Path) -> None:
    argv = Stack(var=tmp_path, database_url="sqlite://").commands(SECRETS, tmp_path / "e.yml")
    line = " ".join(" ".join(cmd) for cmd in argv.values())
    assert not [name for name, value in SECRETS.items() if value in line]
    assert "--auth-token" not in line  # Rasa's launcher adds it in-process (bot/serve.py)


def test_rasa_calls_the_action_server_with_its_secret_from_the_environment(tmp_path: Path) -> None:
    conf = yaml.safe_load(endpoints(tmp_path, 5055, None, None).read_text())
    assert conf["action_endpoint"]["headers"] == {"X-Action-Secret": "${ACTION_SERVER_SECRET}"}


def test_the_action_server_refuses_callers_without_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from actions.serve import refuse_strangers

    monkeypatch.setenv("ACTION_SERVER_SECRET", "s3cret")

    def call(headers: dict[str, str]) -> object:
        return asyncio.run(refuse_strangers(SimpleNamespace(headers=headers)))  # type: ignore[arg-type]

    assert getattr(call({}), "status", None) == 403
    assert getattr(call({"X-Action-Secret": "guess"}), "status", None) == 403
    assert call({"X-Action-Secret": "s3cret"}) is None
    monkeypatch.delenv("ACTION_SERVER_SECRET")
    assert getattr(call({"X-Action-Secret": ""}), "status", None) == 403  # unset: nobody


@pytest.mark.e2e
def test_the_running_stack_admits_only_the_gateway_and_each_other(running: Running) -> None:
    rasa = f"http://127.0.0.1:{running.stack.ports['rasa']}"
    actions = f"http://127.0.0.1:{running.stack.ports['actions']}"
    forged = {"sender": "sms-13800000002", "message": "我欠多少钱"}
    for hook in ("gateway", "rest"):
        r = httpx.post(f"{rasa}/webhooks/{hook}/webhook", json=forged, timeout=30)
        assert r.status_code == 403, (hook, r.text)
        r = httpx.post(f"{rasa}/webhooks/{hook}/webhook", json=forged, headers={"X-Channel-Secret": "x"}, timeout=30)
        assert r.status_code == 403, (hook, r.text)
    call = {
        "next_action": "action_confirm",
        "sender_id": "sms-13800000002",
        "tracker": {"sender_id": "sms-13800000002", "slots": {"pending_offer": '{"kind": "promise"}'}},
        "domain": {},
        "version": "3.6.21",
    }
    assert httpx.post(f"{actions}/webhook", json=call, timeout=30).status_code == 403
    assert httpx.get(f"{actions}/actions", timeout=30).status_code == 403
    # The gateway, holding the secrets, still gets through (the whole stack is healthy).
    assert httpx.get(f"{running.gateway}/healthz", timeout=30).json()["status"] == "ok"
    # And no process shows a secret on its command line.
    for proc in running.stack.procs.values():
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert not [v for v in running.secrets.values() if v and v in cmdline]
