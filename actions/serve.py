"""The action server (rasa-sdk's own), accepting only callers that hold the shared secret.

`python -m actions.serve --actions actions -p 5055` is rasa-sdk's command line; every request
must carry header `X-Action-Secret` equal to ACTION_SERVER_SECRET (unset: all refused, 403).
Rasa sends it from endpoints.yml (`action_endpoint.headers`), the gateway's health check too.
Importing this module starts nothing (rasa-sdk's executor imports every module of the package).
"""

from __future__ import annotations

import hmac
import logging
import os
from functools import partial
from typing import Any

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app_for_serve, create_argument_parser, create_ssl_config
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.worker.loader import AppLoader

from actions.context import dispose_database

SECRET_HEADER = "X-Action-Secret"


def secret_ok(given: str | None) -> bool:
    expected = os.environ.get("ACTION_SERVER_SECRET", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def refuse_strangers(request: Request) -> HTTPResponse | None:
    if not secret_ok(request.headers.get(SECRET_HEADER)):
        return response.json({"error": "forbidden"}, status=403)
    return None


def guarded_app(executor: ActionExecutor, **options: Any) -> Sanic[Any, Any]:
    """rasa-sdk's app with the secret checked before any route (module level: Sanic pickles it)."""
    app: Sanic[Any, Any] = create_app_for_serve(executor, **options)
    app.register_middleware(refuse_strangers, "request")
    app.register_listener(_close_database, "after_server_stop")
    return app


async def _close_database(*_: Any) -> None:
    dispose_database()


def main() -> None:
    args = create_argument_parser().parse_args()
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file, args.loglevel, args.logging_config_file
    )
    utils.update_sanic_log_level()
    executor = ActionExecutor()
    executor.register_package(args.actions_module or args.actions)
    loader = AppLoader(
        factory=partial(
            guarded_app, executor, cors_origins=args.cors, auto_reload=args.auto_reload, endpoints=args.endpoints
        )
    )
    app = loader.load()
    app.prepare(
        host=os.environ.get("SANIC_HOST", "127.0.0.1"),
        port=args.port,
        ssl=create_ssl_config(args.ssl_certificate, args.ssl_keyfile, args.ssl_password),
        workers=utils.number_of_sanic_workers(),
    )
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
