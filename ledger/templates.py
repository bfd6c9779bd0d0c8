"""Copy that lists or composes several parts lives in templates/ (Jinja2), not in code."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ledger.settings import ROOT


@lru_cache(maxsize=4)
def _environment(folder: str) -> Environment:
    return Environment(
        loader=FileSystemLoader(ROOT / "templates" / folder),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(folder: str, name: str, **values: Any) -> str:
    """Render templates/<folder>/<name>; a missing value is an error, never an empty gap."""
    return _environment(folder).get_template(name).render(**values).strip()
