"""Start the whole stack (action server, Rasa, gateway), wait until healthy, stop it cleanly.

Used by `make run` and by the end-to-end tests, so both exercise the same start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import yaml

from scripts.supervisor import GaveUp, Supervisor, busy_ports, clear_leftovers, die_with_parent, kill_group

ROOT = Path(__file__).resolve().parents[1]
APP_PY = ROOT / ".venv/app/bin/python"
BOT_PY = ROOT / ".venv/bot/bin/python"
RASA = ROOT / ".venv/bot/bin/rasa"
MODEL = ROOT / "models/current.tar.gz"


def migrate(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(cfg, "head")


def free_port() -> int:
    """A loopback port nothing listens on now (for test and benchmark stacks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Rasa's SQL tracker store, keeping trackers between turns (bot/tracker_store.py).
TRACKER_STORE = "bot.tracker_store.CachedSQLTrackerStore"
TRACKER_CACHE_DEFAULT = 2000  # trackers kept in memory per Rasa server (~50 KB each)


def tracker_cache_size(env: Mapping[str, str]) -> int:
    """RASA_TRACKER_CACHE: how many conversations' trackers each Rasa server keeps between turns."""
    raw = env.get("RASA_TRACKER_CACHE", "").strip()
    if not raw:
        return TRACKER_CACHE_DEFAULT
    if not raw.isdigit():
        raise ValueError(f"RASA_TRACKER_CACHE must be a whole number of trackers, not {raw!r}")
    return int(raw)


def endpoints(
    var: Path,
    actions_port: int,
    tracker_url: str | None,
    redis_url: str | None,
    tracker_cache: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Rasa's endpoints file for this run: action server, tracker store, lock store.

    `tracker_cache` bounds the trackers Rasa keeps in memory between turns (RASA_TRACKER_CACHE):
    its memory grows with them until the bound, then stays flat (bench/soak.py shows it).
    `env` (default this process's) may set RASA_ASYNC_STORES."""
    env = os.environ if env is None else env
    if tracker_cache is None:
        tracker_cache = tracker_cache_size(env)
    conf: dict[str, object] = {
        "action_endpoint": {
            "url": f"http://127.0.0.1:{actions_port}/webhook",
            # Rasa reads ${VAR} from its environment: the secret is in neither this file nor argv.
            "headers": {"X-Action-Secret": "${ACTION_SERVER_SECRET}"},
        }
    }
    if tracker_url:
        u = urlparse(tracker_url)
        conf["tracker_store"] = {
            "type": TRACKER_STORE,
            "dialect": u.scheme.split("+")[0],
            "url": u.hostname,  # Rasa's SQL tracker store reads the host from `url`
            "port": u.port or 5432,
            "db": u.path.lstrip("/"),
            "username": u.username or "",
            "password": u.password or "",
            "cache_size": tracker_cache,
        }
    else:
        conf["tracker_store"] = {
            "type": TRACKER_STORE,
            "dialect": "sqlite",
            "db": str(var / "rasa_tracker.db"),
            "cache_size": tracker_cache,
        }
    # Rasa's own stores wait on PostgreSQL and Redis with the event loop stopped; ours do not
    # (bot/tracker_store.py, bot/lock_store.py). RASA_ASYNC_STORES=0 runs Rasa's way, to compare.
    rasas_way = env.get("RASA_ASYNC_STORES", "").strip() == "0"
    if rasas_way and tracker_url:
        conf["tracker_store"]["driver"] = "sqlalchemy"  # type: ignore[index]
    if redis_url:
        u = urlparse(redis_url)
        conf["lock_store"] = {
            "type": "redis" if rasas_way else "bot.lock_store.AsyncRedisLockStore",
            "url": u.hostname,
            "port": u.port or 6379,
            "db": int(u.path.lstrip("/") or 0),
            "key_prefix": "repay",
        }
    path = var / "endpoints.yml"
    path.write_text(yaml.safe_dump(conf, allow_unicode=True))
    return path


@dataclass
class Stack:
    """The three processes, on the given ports, sharing one database."""

    var: Path
    database_url: str
    ports: dict[str, int] = field(default_factory=lambda: {"rasa": 5005, "actions": 5055, "gateway": 8000})
    env_extra: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def rasa_names(self) -> list[str]:
        """`rasa`, then `rasa2`, `rasa3`, ... for each extra port given (docs/scaling.md)."""
        return ["rasa", *sorted((n for n in self.ports if n.startswith("rasa") and n != "rasa"), key=lambda n: n)]

    def env(self, secrets: dict[str, str]) -> dict[str, str]:
        env = {**os.environ, **secrets, **self.env_extra}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "PYTHONPATH": str(ROOT),
                "SANIC_HOST": "127.0.0.1",
                "RASA_URL": f"http://127.0.0.1:{self.ports['rasa']}",
                "RASA_URLS": ",".join(f"http://127.0.0.1:{self.ports[n]}" for n in self.rasa_names()),
                "ACTION_SERVER_URL": f"http://127.0.0.1:{self.ports['actions']}",
                "RASA_TELEMETRY_ENABLED": "false",
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def commands(self, secrets: dict[str, str], endpoints_file: Path) -> dict[str, list[str]]:
        """The command line of each process. No secret is on any of them (they reach the
        processes through the environment): `ps` shows command lines to every local user."""
        return {
            "actions": [str(APP_PY), "-m", "actions.serve", "--actions", "actions", "-p", str(self.ports["actions"])],
            **{
                name: [
                    str(BOT_PY),
                    "-m",
                    "bot.serve",  # Rasa's CLI, with --auth-token added in-process from RASA_AUTH_TOKEN
                    "run",
                    "--enable-api",
                    "-m",
                    str(MODEL),
                    "--endpoints",
                    str(endpoints_file),
                    "--credentials",
                    str(ROOT / "credentials.yml"),
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(self.ports[name]),
                ]
                for name in self.rasa_names()
            },
            "gateway": [
                str(APP_PY),
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports["gateway"]),
                "--no-access-log",
                "--no-proxy-headers",  # X-Forwarded-For is believed only from TRUSTED_PROXIES (api/limits.py)
            ],
        }

    def start(self, secrets: dict[str, str], names: list[str] | None = None) -> None:
        """Start the processes named (all by default) that are not running yet."""
        private_var(self.var)
        env = self.env(secrets)
        ep = endpoints(
            self.var,
            self.ports["actions"],
            env.get("TRACKER_STORE_URL"),
            env.get("REDIS_URL"),
            tracker_cache_size(env),
            env,
        )
        commands = self.commands(secrets, ep)
        for name, cmd in commands.items():
            if (names is not None and name not in names) or name in self.procs:
                continue
            log = open(self.var / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
            # Its own session and process group, so a stop or restart reaches its children too; and
            # SIGTERM when the process that started it dies, so no orphan keeps a port.
            self.procs[name] = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            log.close()  # the child has its own copy

    def wait_healthy(
        self, timeout: float = 180, progress: bool = False, between: Callable[[], None] | None = None
    ) -> float:
        """Poll /healthz until every part is ok; returns seconds waited.

        Without `between`, a part that exits fails the wait; with it (a supervisor's poll), the
        supervisor restarts the part and decides when to give up.
        """
        start, last = time.monotonic(), ""
        url = f"http://127.0.0.1:{self.ports['gateway']}/healthz"
        while time.monotonic() - start < timeout:
            if between is not None:
                between()
            for name, proc in list(self.procs.items()) if between is None else []:
                if proc.poll() is not None:
                    tail = (self.var / f"{name}.log").read_text(errors="replace").splitlines()[-25:]
                    raise RuntimeError(f"{name} exited with {proc.returncode}; the end of its log:\n" + "\n".join(tail))
            try:
                body = httpx.get(url, timeout=3).json()
                if body.get("status") == "ok":
                    return time.monotonic() - start
                state = ", ".join(f"{k}: {v}" for k, v in body["checks"].items())
            except (httpx.HTTPError, ValueError, KeyError):
                state = "gateway starting"
            if progress and state != last:
                print(f"  [{time.monotonic() - start:5.1f}s] {state}", flush=True)
                last = state
            time.sleep(0.25)
        raise TimeoutError(f"not healthy after {timeout}s: {last}")

    def stop(self) -> None:
        """SIGTERM to each part's process group, SIGKILL after 15 s; children go with their part."""
        for proc in self.procs.values():
            kill_group(proc.pid, signal.SIGTERM)  # the group, even if its leader already died
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            kill_group(proc.pid, signal.SIGKILL)  # whatever of the group still lingers
            proc.wait()
        (self.var / "stack.pids").unlink(missing_ok=True)


def private_var(var: Path) -> None:
    """var/ holds secrets, databases and logs: readable by this user only, and so is all that
    this process and its children create from now on."""
    os.umask(0o077)
    var.mkdir(parents=True, exist_ok=True)
    var.chmod(0o700)
    for path in var.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


def wants_demo(database_url: str) -> bool:
    """Demo holders (whose answers the README publishes) only in the default SQLite file, or on request."""
    from settings import Settings

    return os.environ.get("DEMO") == "1" or database_url == Settings.model_fields["database_url"].default


def prepare(database_url: str, var: Path, demo: bool = True) -> dict[str, str]:
    """Secrets, schema, demo data: everything the stack needs before it starts (tests, benchmarks)."""
    secrets = secrets_for(var)
    prepare_database(database_url, demo)
    return secrets


def secrets_for(var: Path) -> dict[str, str]:
    from scripts.secrets_file import ensure_secrets

    private_var(var)
    return ensure_secrets(var / "secrets.env")


def prepare_database(database_url: str, demo: bool = True) -> None:
    """The ledger's schema and, when asked, the demo holders (the gateway and actions need them; Rasa does not)."""
    from scripts.demo import load_demo

    migrate(database_url)
    if not demo:
        return
    from ledger.clock import process_clock
    from ledger.db import transaction

    with transaction(database_url) as session:
        load_demo(session, process_clock(os.environ.get("APP_TIMEZONE", "Asia/Shanghai")).today())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--max-failures", type=int, default=5, help="stop everything when a part fails to start N times in a row"
    )
    parser.add_argument(
        "--hang-seconds", type=float, default=30, help="restart a part that stops answering its health check this long"
    )
    parser.add_argument(
        "--write-endpoints",
        action="store_true",
        help="only write var/endpoints.yml from the environment (for systemd units or a Procfile), then exit",
    )
    args = parser.parse_args()
    var = ROOT / "var"
    if args.write_endpoints:
        var.mkdir(parents=True, exist_ok=True)
        port = int(os.environ.get("PORT_ACTIONS", 5055))
        print(endpoints(var, port, os.environ.get("TRACKER_STORE_URL"), os.environ.get("REDIS_URL")))
        return 0
    from settings import get_settings

    database_url = get_settings().database_url
    if not MODEL.exists():
        print("No trained model: run `make train` first.", file=sys.stderr)
        return 1

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a process started in the background may inherit SIGINT as ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    t0 = time.monotonic()
    secrets = secrets_for(var)
    stack = Stack(
        var=var,
        database_url=database_url,
        ports={
            "rasa": int(os.environ.get("PORT_RASA", 5005)),
            "actions": int(os.environ.get("PORT_ACTIONS", 5055)),
            "gateway": int(os.environ.get("PORT_GATEWAY", 8000)),
        },
    )
    var.mkdir(parents=True, exist_ok=True)
    clear_leftovers(var / "stack.pids", str(ROOT))  # a previous run whose supervisor was killed
    busy = busy_ports(stack.ports)
    if busy:
        print("Cannot start: " + "\n  ".join(["", *busy]), file=sys.stderr)
        return 1
    print("Starting Rasa, then the action server and gateway (logs in var/*.log) ...", flush=True)
    try:
        # Rasa's imports and model load are most of the start-up and need no ledger: begin them
        # first, and bring the schema and demo holders up to date meanwhile.
        stack.start(secrets, names=stack.rasa_names())
        prepare_database(database_url, wants_demo(database_url))
        stack.start(secrets)
        supervisor = Supervisor(stack, secrets, max_failures=args.max_failures, hang_seconds=args.hang_seconds)
        supervisor.record()
        waited = stack.wait_healthy(progress=True, between=supervisor.poll)
        gw = f"http://127.0.0.1:{stack.ports['gateway']}"
        print(f"\nHealthy in {time.monotonic() - t0:.1f}s (processes up in {waited:.1f}s).")
        print(f"  Chat page:  {gw}/chat      Agent console: {gw}/agent      KPI dashboard: {gw}/kpis")
        print(f"  Chat API:   POST {gw}/v1/chat/sessions, then /v1/chat/<id>/messages with the session token")
        print(f"  Health:     {gw}/healthz    API schema: {gw}/openapi.json (docs at /docs with API_DOCS_ASSETS)")
        print("  Admin token: in var/secrets.env (ADMIN_API_TOKEN)")
        print("  Demo holders (phone / ID last 4 / card last 4): see README, e.g. 13800000002 / 2345 / 6002 (M2)")
        print(
            f"A part that dies or hangs is restarted (one line each); Ctrl-C stops everything, and so does "
            f"a part failing to start {args.max_failures} times in a row.",
            flush=True,
        )
        supervisor.run()
        return 0
    except GaveUp as exc:
        print(f"Giving up: {exc}. Stopping the rest.", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        print(f"Giving up: {exc} (logs in var/*.log). Stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping ...")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
