"""The API's description of itself: typed answers, links that lead somewhere, and no route that
would run blocking database work on the event loop."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.deps import session_dep
from api.main import create_app

app = create_app()
SCHEMA = app.openapi()
OPERATIONS = {
    op["operationId"]: (path, op)
    for path, item in SCHEMA["paths"].items()
    for op in item.values()
    if "operationId" in op
}


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, also those of included routers (FastAPI nests them)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        if nested:
            found += _api_routes(nested)
    return found


def _dependencies(dependant: Dependant) -> list[Any]:
    found = [dependant.call]
    for sub in dependant.dependencies:
        found += _dependencies(sub)
    return found


def test_every_json_answer_and_every_error_has_a_schema() -> None:
    untyped = []
    for path, item in SCHEMA["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                for media, content in response.get("content", {}).items():
                    if media == "application/json" and not content.get("schema"):
                        untyped.append(f"{method.upper()} {path} {status}")
            errors = [s for s in op["responses"] if s.startswith(("4", "5"))]
            for status in errors:
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorBody"), f"{method.upper()} {path} {status}"
    assert untyped == []


def test_links_name_operations_that_exist_and_their_parameters() -> None:
    seen = 0
    for _, item in SCHEMA["paths"].items():
        for op in item.values():
            for response in op["responses"].values():
                for name, link in response.get("links", {}).items():
                    _, target = OPERATIONS[link["operationId"]]
                    names = {p["name"] for p in target.get("parameters", [])}
                    assert set(link["parameters"]) <= names, (name, link)
                    seen += 1
    assert seen >= 15
    # Each id a creator returns leads to what reads it.
    assert OPERATIONS["open_session"][1]["responses"]["201"]["links"]["send"]["operationId"] == "post_message"
    assert OPERATIONS["create_campaign"][1]["responses"]["201"]["links"]["progress"]["operationId"] == (
        "campaign_progress"
    )


def test_no_async_route_takes_a_blocking_session() -> None:
    """A `SessionDep` runs its queries (and SQLite's writer lock) in the route's own thread: fine for
    a `def` route (the thread pool), a stall of every request for an `async def` one."""
    routes = _api_routes(app.routes)
    with_session = [route for route in routes if session_dep in _dependencies(route.dependant)]
    assert len(routes) >= 30 and len(with_session) >= 10  # the walk sees them
    assert [route.path for route in with_session if inspect.iscoroutinefunction(route.endpoint)] == []
