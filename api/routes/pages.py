"""The pages a person opens: the holder's chat, the agent console, the KPI dashboard, the API docs.

Their scripts and styles are static files served from here, so the CSP can forbid inline
script and style, and the pages may connect only to this origin. The API docs (Swagger UI) are
served the same way, from files on this machine (`API_DOCS_ASSETS`, or the Python package
swagger-ui-bundle when installed), never from a CDN; without them /docs is off.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.deps import SettingsDep
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


DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@lru_cache(maxsize=4)
def swagger_ui_folder(setting: str, configured: str) -> Path | None:
    """Where Swagger UI's files are on this machine: `API_DOCS_ASSETS`, else the installed package
    swagger-ui-bundle's; None (docs off) when API_DOCS=off or neither has both files."""
    if setting == "off":
        return None
    candidates = [Path(configured)] if configured else []
    try:
        bundle = importlib.import_module("swagger_ui_bundle")
        candidates.append(Path(str(getattr(bundle, "swagger_ui_path", ""))))
    except ImportError:
        pass
    for folder in candidates:
        if str(folder) not in ("", ".") and all((folder / name).is_file() for name in DOCS_ASSETS):
            return folder
    return None


def _docs_folder(settings: SettingsDep) -> Path:
    folder = swagger_ui_folder(settings.api_docs, settings.api_docs_assets)
    if folder is None:
        raise ApiError(404, "not_found", "API docs are off here; the schema is at /openapi.json")
    return folder


@router.get("/docs", response_class=HTMLResponse)
def api_docs(settings: SettingsDep) -> HTMLResponse:
    """Swagger UI from this origin only, under a CSP without inline script or any other host."""
    _docs_folder(settings)
    return HTMLResponse(_page("docs.html"), headers={**HEADERS, "Content-Security-Policy": DOCS_CSP})


@router.get("/docs/assets/{name}")
def api_docs_asset(name: str, settings: SettingsDep) -> Response:
    folder = _docs_folder(settings)
    if name not in DOCS_ASSETS:
        raise ApiError(404, "not_found", "no such file")
    body = (folder / name).read_bytes()
    return Response(body, media_type=TYPES[Path(name).suffix], headers={**HEADERS, "Content-Security-Policy": DOCS_CSP})


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
