"""Mask card, ID and phone numbers before text reaches a log or a transcript."""

from __future__ import annotations

import re

# Runs of digits (with optional spaces/dashes) long enough to be a card, ID or phone number.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")  # 18-char resident ID
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def _mask_card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "*" * (len(digits) - 4) + digits[-4:]


def mask(text: str) -> str:
    """Keep only what identifies nothing on its own: the last four of a card/ID, phone as 138****5678."""
    text = _ID_NUMBER.sub(lambda m: "*" * 14 + m.group(2)[-4:], text)
    text = _CARD.sub(_mask_card, text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
