"""Generate the local secrets once into var/secrets.env (mode 600); the environment overrides them."""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

NAMES = (
    "ADMIN_API_TOKEN",
    "RASA_AUTH_TOKEN",
    "LINK_SIGNING_KEY",
    "AGENT_JWT_KEY",
    "WECHAT_TOKEN",
    "WECHAT_ENCODING_AES_KEY",
    "RASA_CHANNEL_SECRET",  # the gateway -> Rasa channel webhooks (X-Channel-Secret)
    "ACTION_SERVER_SECRET",  # Rasa and the gateway -> the action server (X-Action-Secret)
    "SMS_INBOUND_DEV_SECRET",  # outbox mode: who may play the phone (X-SMS-Dev-Secret)
)


def _generate(name: str) -> str:
    # WeChat's console takes a Token of 3-32 letters or digits and an EncodingAESKey of 43.
    if name == "WECHAT_TOKEN":
        return secrets.token_hex(16)
    if name == "WECHAT_ENCODING_AES_KEY":
        return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    return secrets.token_urlsafe(32)


def ensure_secrets(path: Path) -> dict[str, str]:
    """Read var/secrets.env, adding any missing secret; never prints a value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    missing = [n for n in NAMES if not values.get(n)]
    for name in missing:
        values[name] = _generate(name)
    if missing or not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Generated locally; never commit. Environment variables of the same name take precedence.\n")
            fh.writelines(f"{k}={v}\n" for k, v in values.items())
    os.chmod(path, 0o600)
    return {k: os.environ.get(k) or v for k, v in values.items()}
