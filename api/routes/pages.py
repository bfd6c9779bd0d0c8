"""The two pages a person opens: the holder's chat and the agent console."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
PAGES = Path(__file__).resolve().parents[1] / "pages"
# The pages load nothing from elsewhere: scripts and styles are inline, data comes from this origin.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'"
)


@lru_cache(maxsize=4)
def _page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def _html(name: str) -> HTMLResponse:
    return HTMLResponse(
        _page(name),
        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"},
    )


@router.get("/chat", response_class=HTMLResponse)
def chat_page() -> HTMLResponse:
    return _html("chat.html")


@router.get("/agent", response_class=HTMLResponse)
def agent_page() -> HTMLResponse:
    return _html("agent.html")


@router.get("/kpis", response_class=HTMLResponse)
def kpi_page() -> HTMLResponse:
    """The KPI dashboard; the data comes from GET /v1/kpis with the admin token."""
    return _html("kpis.html")
