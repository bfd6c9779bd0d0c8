"""Measured fixes for Rasa 3.6's hot path (docs/performance.md).

1. Rasa validates every action-server response with `jsonschema.validate`, which re-checks
   the constant response schema against the JSON Schema metaschema on every call: 57% of
   the Rasa server's CPU under load in our profile. The same validation against a validator
   built once keeps the behaviour (the same best-matching error, the same message).
2. The graph runner works out, on every run, which nodes the targets need (a recursive walk
   that concatenates lists) and builds a fresh dask graph from them: 3-4% of Rasa's CPU. The
   graph for a set of targets never changes once the model is loaded, so it is built once per
   set of targets and copied for each run (the inputs are added to the copy).

Both replace Rasa internals, so they are applied only to the Rasa release they were written and
measured for (`WRITTEN_FOR`); any other release runs Rasa's own code, and the log says so.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
WRITTEN_FOR = "3.6.21"  # the Rasa release whose internals these patches (and bot/tracker_store.py) replace
_installed = False


def written_for_this_rasa(part: str) -> bool:
    """Whether the running Rasa is the release `part` was written for; if not, a warning that Rasa's
    own code is used instead."""
    import rasa

    running = getattr(rasa, "__version__", "unknown")
    if running == WRITTEN_FOR:
        return True
    log.warning("%s was written for Rasa %s, this is Rasa %s: using Rasa's own code", part, WRITTEN_FOR, running)
    return False


def install() -> None:
    """Patch RemoteAction's response validation once per process; idempotent. Nothing on another Rasa."""
    global _installed
    if _installed:
        return
    if not written_for_this_rasa("bot.speedups"):
        return
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    spec = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(spec)
    cls.check_schema(spec)  # once, instead of on every response
    validator = cls(spec)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        error = exceptions.best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            ". Failed to validate Action server response from API, make sure your response from the Action "
            f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result
    _cache_graph_per_targets()
    _installed = True


def _cache_graph_per_targets() -> None:
    import dask
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    def run(
        self: DaskGraphRunner, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
    ) -> dict[str, Any]:
        run_targets = targets if targets else self._graph_schema.target_names
        graphs = self.__dict__.setdefault("_graphs_by_targets", {})
        key = tuple(run_targets)
        if key not in graphs:
            graphs[key] = self._build_dask_graph(self._graph_schema.minimal_graph_schema(run_targets))
        run_graph = dict(graphs[key])
        if inputs:
            self._add_inputs_to_graph(inputs, run_graph)
        try:
            return dict(dask.get(run_graph, run_targets))  # type: ignore[attr-defined]
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e

    original = getattr(DaskGraphRunner.run, "__wrapped__", DaskGraphRunner.run)
    run.__wrapped__ = original  # type: ignore[attr-defined]  # Rasa's own, for comparison in tests
    DaskGraphRunner.run = run
