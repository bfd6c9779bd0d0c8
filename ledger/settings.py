"""What the ledger itself needs from the environment: its database, the policy file, the time zone.

The processes' settings (Rasa, SMS and WeChat providers, Redis, secrets) live in the top-level
`settings` package and extend these; the ledger reads none of them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=VAR / "secrets.env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = f"sqlite+pysqlite:///{VAR / 'app.db'}"
    app_timezone: str = "Asia/Shanghai"
    policy_path: Path = ROOT / "policy.yml"


def ledger_settings() -> LedgerSettings:
    """Read afresh each time: only the migrations ask, once per run."""
    return LedgerSettings()
