"""Structured logs: one JSON object a line, masked, with the conversation id when known."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from ledger.masking import mask


class MaskingFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request, with Rasa's ?token= in the URL
