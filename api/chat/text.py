"""What a holder's message may be before it goes anywhere: length, control characters, commands."""

from __future__ import annotations

import re
import unicodedata

from ledger.errors import ValidationFailed

# The shape of a button payload; whether one may pass is decided per conversation (offered_payloads).
# An offered callback time (issue 29) carries its ISO 8601 instant, and nothing else.
_INSTANT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9]{2}:[0-9]{2}"
BUTTON_PAYLOAD = re.compile(r'^/[a-z_]{2,40}(?:\{"callback_at": "' + _INSTANT + r'"\})?$')


class BadInput(ValidationFailed, ValueError):
    """Text that cannot be accepted; the message says why (422 `bad_message` where a route lets it
    through to api/errors.py)."""

    code = "bad_message"


def _command_char(ch: str) -> bool:
    """Characters that vanish, or become "/", on the way to Rasa's RegexMessageHandler."""
    return ch.isspace() or unicodedata.category(ch) == "Cf" or unicodedata.normalize("NFKC", ch) == "/"


def clean_text(raw: str, limit: int) -> str:
    """Reject what cannot be a message; keep everything else exactly (emoji, traditional, SQL-looking text).

    Text that would read as a command once normalised (zero-width characters, a full-width
    slash) loses its leading slashes unless it has exactly a button payload's shape; whether
    that payload may pass is decided by the conversation (only what the bot offered there).
    """
    text = "".join(ch for ch in raw if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")).strip()
    if not text:
        raise BadInput("the message is empty")
    if len(text) > limit:
        raise BadInput(f"the message is longer than {limit} characters")
    probe = "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf").strip()
    if probe.startswith("/"):
        if BUTTON_PAYLOAD.match(probe):
            return probe
        rest = text
        while rest and _command_char(rest[0]):
            rest = rest[1:]
        text = rest or text.replace("/", "").replace("\uff0f", "") or "?"
    return text
