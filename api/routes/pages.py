"""The pages a person opens: the holder's chat, the agent console, the KPI dashboard.

Their scripts and styles are static files served from here, so the CSP can forbid inline
script and style, and the pages may connect only to this origin.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.errors import ApiError

router = APIRouter(include_in_schema=False)
PAGES = Path(__file__).resolve().parents[1] / "pages"
STATIC = PAGES / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@lru_cache(maxsize=4)
def _page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


@lru_cache(maxsize=16)
def _asset(name: str) -> bytes | None:
    path = STATIC / name
    if path.parent != STATIC or path.suffix not in TYPES or not path.is_file():
        return None
    return path.read_bytes()


def _html(name: str) -> HTMLResponse:
    return HTMLResponse(_page(name), headers=HEADERS)


@router.get("/static/{name}")
def static(name: str) -> Response:
    body = _asset(name)
    if body is None:
        raise ApiError(404, "not_found", "no such file")
    return Response(body, media_type=TYPES[Path(name).suffix], headers=HEADERS)


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
