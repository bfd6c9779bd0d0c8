"""OpenAPI links: which response gives the id another operation takes (operation ids are the
route function names; api/main.py makes them so)."""

from __future__ import annotations

from typing import Any


def link(operation_id: str, **parameters: str) -> dict[str, Any]:
    """A link to `operation_id`, its parameters filled from runtime expressions of this response."""
    return {"operationId": operation_id, "parameters": parameters}
