"""The process settings of the gateway, the action server, the scripts and the benchmarks, in one place.

Read from the environment and `var/secrets.env` (an environment variable wins). The ledger's own
(database, policy file, time zone) are `ledger.settings.LedgerSettings`, which these extend; the
ledger itself knows nothing of Rasa, SMS or WeChat providers, Redis or secrets.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from ledger.settings import LedgerSettings

SmsProvider = Literal["outbox", "twilio"]  # outbox: sends nothing, keeps what would go (GET /v1/sms/outbox)
WeChatProvider = Literal["outbox", "wechat"]  # wechat: the Official Account's message APIs


class Settings(LedgerSettings):
    """Everything a process of the assistant reads from the environment (and `var/secrets.env`),
    beside what the ledger needs (`LedgerSettings`: DATABASE_URL, APP_TIMEZONE, the policy file)."""

    admin_api_token: SecretStr = SecretStr("")
    rasa_auth_token: SecretStr = SecretStr("")
    link_signing_key: SecretStr = SecretStr("")
    agent_jwt_key: SecretStr = SecretStr("")
    rasa_url: str = "http://127.0.0.1:5005"
    # Several Rasa servers sharing a SQL tracker store and a Redis lock store: comma-separated.
    # Each conversation is pinned to one of them by its id (docs/scaling.md).
    rasa_urls: str = ""
    action_server_url: str = "http://127.0.0.1:5055"
    rasa_timeout_seconds: float = 1.8
    rasa_max_in_flight: int = Field(default=8, ge=1)  # turns inside one Rasa server at once (api/chat/rasa.py)
    sms_provider: SmsProvider = "outbox"
    voice_provider: SmsProvider = "outbox"  # outbox | twilio (api/channels/voice): the same Twilio account
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_account_sid: str = ""
    twilio_from_number: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    rate_limit_per_minute: int = 60  # per client address on public endpoints
    # Per address on the SMS and voice providers' webhooks: one provider sends every holder's
    # messages and call turns from a few addresses, and each request is signed.
    provider_webhook_per_minute: int = 3000
    redis_url: str | None = None
    tracker_store_url: str | None = None
    max_message_chars: int = 1000
    # Web sessions the gateway remembers as live (api/chat/access.py), about 330 bytes each.
    web_session_cache: int = Field(default=4096, ge=1)
    verify_idle_minutes: int = Field(default=15, ge=1)  # a verified conversation silent this long verifies again
    # Seconds between looks for conversations handed off only because the bot was away (0: never).
    bot_recovery_seconds: float = Field(default=5.0, ge=0)
    sms_inbound_dev_secret: SecretStr = SecretStr("")  # outbox mode: inbound SMS need X-SMS-Dev-Secret
    trusted_proxies: str = ""  # comma-separated addresses whose X-Forwarded-For is believed
    rasa_channel_secret: SecretStr = SecretStr("")  # X-Channel-Secret on Rasa's channel webhooks
    action_server_secret: SecretStr = SecretStr("")  # X-Action-Secret on every action-server call
    public_base_url: str = "http://127.0.0.1:8000"
    # WeChat Official Account (api/wechat.py): token and AES key as set in the account's console.
    wechat_provider: WeChatProvider = "outbox"
    wechat_token: SecretStr = SecretStr("")
    wechat_app_id: str = ""
    wechat_app_secret: SecretStr = SecretStr("")
    wechat_encoding_aes_key: SecretStr = SecretStr("")
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_reminder_template_id: str = ""
    # API docs at /docs (Swagger UI), served only from files on this machine, never a CDN: the folder
    # of swagger-ui-dist's swagger-ui-bundle.js and swagger-ui.css, else the installed Python package
    # swagger-ui-bundle if there is one; with neither (or API_DOCS=off) /docs is off.
    api_docs: Literal["auto", "off"] = "auto"
    api_docs_assets: str = ""
    # A web chat session ends after this long without a message from the holder (POST /v1/chat/sessions/logout
    # ends it at once); 12 h after it opened at the latest.
    web_session_idle_minutes: int = Field(default=30, ge=1, le=12 * 60)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        """A typo here would otherwise fail every request; fail at start-up instead, naming it."""
        for part in filter(None, (p.strip() for p in value.split(","))):
            ipaddress.ip_network(part, strict=False)  # raises ValueError: "... does not appear to be ..."
        return value


def rasa_servers(settings: Settings) -> list[str]:
    return [u.strip().rstrip("/") for u in settings.rasa_urls.split(",") if u.strip()] or [settings.rasa_url]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
