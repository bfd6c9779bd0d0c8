"""`make bench`: every speed benchmark, JSON into bench/results/ and a table on stdout.

Turn latency (gateway against bare Rasa, on a scratch SQLite stack), the campaign over
100,000 accounts (SQLite, and PostgreSQL when it answers), end-of-day over 100,000 accounts
with plans (BENCH_EOD_ACCOUNTS), and one against two Rasa servers
when PostgreSQL and Redis answer. NLU accuracy has its own target, `make eval-nlu`.

BENCH_LEVELS (default "1,10,50") and BENCH_CONVERSATIONS (default 40 per level) size the
load; CI runs the same harness on a tiny load through the test suite.

`python -m bench.run turns` runs the turn benchmark alone (e.g. `BENCH_LEVELS=1` for the
sequential overhead); with DATABASE_URL set to PostgreSQL the gateway and actions use it
(Rasa's tracker stays on SQLite). Every turn run is appended to bench/results/turns-runs.jsonl,
whatever its figures; turns.json holds the latest full `make bench`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import campaign as campaign_bench
from bench import eod as eod_bench
from bench import scaling as scaling_bench
from bench.machine import describe, record
from bench.turns import Target, compare, holders_needed, make_holders
from ledger.clock import Clock
from ledger.db import make_engine, transaction
from ledger.models import Account, Message, Plan, Promise
from scripts.stack import ROOT, Stack, free_port, prepare

RESULTS = ROOT / "bench" / "results"


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])
        except (OSError, IndexError):
            continue
    return round(total / 1024, 1)


def _stat(pid: int | str) -> tuple[str, float]:
    """A process's command name and its CPU seconds (user + system) so far, from /proc."""
    head, _, rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")
    fields = rest.split()
    return head.split("(", 1)[-1], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far, in seconds."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            total += _stat(p)[1]
        except (OSError, IndexError):
            continue
    return total


def server_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of this machine's PostgreSQL and Redis servers (all their processes).
    A stack on them spends CPU there that a SQLite stack spends in its own processes; while one
    stack plays a round, the others are idle, so the difference over a round is that stack's."""
    totals = {"postgres": 0.0, "redis": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command, seconds = _stat(entry.name)
        except (OSError, IndexError):
            continue
        name = "postgres" if command == "postgres" else "redis" if command.startswith("redis-server") else ""
        if name:
            totals[name] += seconds
    return totals


def _children(pid: int) -> list[int]:
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def _first_free_holder(url: str) -> int:
    """Holders after those of earlier runs on the same database, so each conversation starts afresh."""
    with transaction(url) as s:
        return int(s.scalar(select(func.count()).select_from(Account).where(Account.account_id.like("bench-%"))) or 0)


@dataclass
class TurnStack:
    """A scratch stack started for the turn benchmark, and what its result is counted from."""

    stack: Stack
    url: str
    target: Target
    first: int  # the first holder of this run (the database may hold earlier runs')
    stored_before: int  # user messages the transcript held before
    startup: float
    t0: float

    def result(self, rows: list[dict[str, Any]], totals: dict[str, int]) -> dict[str, Any]:
        ours = select(Account.id).where(
            Account.account_id >= f"bench-{self.first:08d}", Account.account_id.like("bench-%")
        )
        memory = {name: rss_mib(p.pid) for name, p in self.stack.procs.items()}
        with transaction(self.url) as s:
            stored_user = (s.scalar(_USER_MESSAGES) or 0) - self.stored_before
            plans = s.scalar(select(func.count()).select_from(Plan).where(Plan.account_pk.in_(ours)))
            promises = s.scalar(select(func.count()).select_from(Promise).where(Promise.account_pk.in_(ours)))
        return {
            "database": self.url.split(":")[0],
            "startup_s": round(self.startup, 1),
            "wall_s": round(time.monotonic() - self.t0, 1),
            "levels": rows,
            "memory_rss_mib": memory,
            "gateway_messages_sent": totals["gateway_sent"],
            "gateway_messages_stored": stored_user,
            "lost_messages": totals["gateway_sent"] - (stored_user or 0),
            # Both paths negotiate through the same action server, so both write to the ledger.
            "plans_asked_recorded": [totals["plans_asked"], plans],
            "promises_asked_recorded": [totals["promises_asked"], promises],
        }


_USER_MESSAGES = select(func.count()).select_from(Message).where(Message.sender == "user")


@contextlib.contextmanager
def turn_stack(
    levels: list[int], conversations: int, env: dict[str, str] | None = None, min_rounds: int = 1
) -> Iterator[TurnStack]:
    """A scratch stack, healthy, with fresh holders for `levels`; stopped on leaving.

    `env` sets the stack's DATABASE_URL, TRACKER_STORE_URL, REDIS_URL, RASA_ASYNC_STORES
    (default: this process's DATABASE_URL when it is PostgreSQL, else a SQLite file)."""
    env = dict(env or {})
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        given = env.pop("DATABASE_URL", os.environ.get("DATABASE_URL", ""))
        url = given if given.startswith("postgresql") else f"sqlite+pysqlite:///{var / 'bench.db'}"
        secrets = prepare(url, var)
        # Bare Rasa's REST channel takes only callers holding its secret: one for every stack.
        env["RASA_CHANNEL_SECRET"] = os.environ.setdefault("RASA_CHANNEL_SECRET", secrets["RASA_CHANNEL_SECRET"])
        first = _first_free_holder(url)
        needed = holders_needed(levels, conversations, min_rounds)
        holders = make_holders(url, needed, Clock.system("Asia/Shanghai").today(), start=first)
        with transaction(url) as s:
            stored_before = s.scalar(_USER_MESSAGES) or 0
        if url.startswith("postgresql"):  # planner statistics for the rows just written, as a running
            engine = make_engine(url)  # bank's database has them (not autovacuum's, mid-run)
            with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                conn.exec_driver_sql("ANALYZE")
            engine.dispose()
        stack = Stack(
            var=var,
            database_url=url,
            ports={"rasa": free_port(), "actions": free_port(), "gateway": free_port()},
            env_extra={"RASA_TIMEOUT_SECONDS": "30", "RATE_LIMIT_PER_MINUTE": "1000000", **env},
        )
        t0 = time.monotonic()
        stack.start(secrets)
        try:
            startup = stack.wait_healthy(timeout=300)
            print(f"  stack healthy in {startup:.1f}s", flush=True)
            gw, rasa = (f"http://127.0.0.1:{stack.ports[k]}" for k in ("gateway", "rasa"))

            servers = url.startswith("postgresql") or "REDIS_URL" in env

            def cpu() -> dict[str, float]:
                used = {name: cpu_seconds(p.pid) for name, p in stack.procs.items()}
                return {**used, **server_cpu_seconds()} if servers else used

            yield TurnStack(stack, url, Target(gw, rasa, holders, cpu), first, stored_before, startup, t0)
        finally:
            stack.stop()


def run_turns(levels: list[int], conversations: int) -> dict[str, Any]:
    with turn_stack(levels, conversations) as ts:
        t = ts.target
        rows, totals = asyncio.run(compare(t.gateway, t.rasa, levels, conversations, t.holders, cpu=t.cpu))
        return ts.result(rows, totals)


def _turns_table(result: dict[str, Any]) -> None:
    print(f"\n| benchmark ({result['database']}) | figure |\n|---|---|")
    for row in result["levels"]:
        c, g, b = row["concurrency"], row["gateway"], row["bare_rasa"]
        print(
            f"| turns, {c} concurrent | gateway p50 {g['p50_ms']} ms, p99 {g['p99_ms']} ms, "
            f"{g['turns_per_s']} turns/s, {g['errors']} failed of {g['turns']}; bare Rasa p50 {b['p50_ms']} ms, "
            f"{b['errors']} failed; ratio {row['p50_ratio']} |"
        )
        per_turn = ", ".join(f"{k} {v}" for k, v in row["cpu_ms_per_turn"]["gateway"].items())
        print(f"| CPU ms per turn, {c} concurrent, through the gateway | {per_turn} |")


def main() -> int:
    levels = [int(x) for x in os.environ.get("BENCH_LEVELS", "1,10,50").split(",")]
    conversations = int(os.environ.get("BENCH_CONVERSATIONS", "40"))
    campaign_accounts = int(os.environ.get("BENCH_CAMPAIGN_ACCOUNTS", "100000"))
    eod_accounts = int(os.environ.get("BENCH_EOD_ACCOUNTS", "100000"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(f"== turn latency: gateway vs bare Rasa at concurrency {levels} ==", flush=True)
    result = {
        "benchmark": "turns",
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **run_turns(levels, conversations),
    }
    if sys.argv[1:] != ["turns"]:  # the full run's figures; a turns-only run goes to the history alone
        (RESULTS / "turns.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    with (RESULTS / "turns-runs.jsonl").open("a") as history:  # every run, not only the best spell
        history.write(json.dumps(result, ensure_ascii=False) + "\n")
    print(f"memory (RSS MiB): {result['memory_rss_mib']}; lost messages: {result['lost_messages']}")
    print(
        "plans asked/recorded: {0[0]}/{0[1]}; promises asked/recorded: {1[0]}/{1[1]}".format(
            result["plans_asked_recorded"], result["promises_asked_recorded"]
        )
    )
    if sys.argv[1:] == ["turns"]:
        _turns_table(result)
        written = all(a == b for a, b in (result["plans_asked_recorded"], result["promises_asked_recorded"]))
        return 0 if result["lost_messages"] == 0 and written else 1
    print(f"== campaign: selection + compliance + enqueue over {campaign_accounts} accounts ==", flush=True)
    campaign = campaign_bench.run(campaign_accounts)
    record(RESULTS, "campaign", campaign)
    print(f"== end-of-day over {eod_accounts} accounts with plans ==", flush=True)
    eod = eod_bench.run(eod_accounts)
    record(RESULTS, "eod", eod)
    _turns_table(result)
    for db, figures in campaign["results"].items():
        if "accounts_per_s" in figures:
            print(f"| campaign, {db} | {figures['accounts_per_s']} accounts/s over {figures['accounts']} |")
    for db, figures in eod["results"].items():
        if "accounts_per_s" in figures:
            print(
                f"| end-of-day, {db} | {figures['accounts_per_s']} accounts/s over {figures['accounts']} with plans |"
            )
    print(f"| stack start to healthy | {result['startup_s']} s |")
    why_not = scaling_bench.available()
    if why_not:
        print(f"\n(one vs two Rasa servers skipped: {why_not})")
    else:
        print("\n== one vs two Rasa servers (PostgreSQL tracker and ledger, Redis locks) ==", flush=True)
        scaling_bench.main()
        rows = json.loads((RESULTS / "scaling.json").read_text())["rows"]
        print("\n| Rasa servers | turns/s | p50 | p99 |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['rasa_servers']} | {r['turns_per_s']} | {r['p50_ms']} ms | {r['p99_ms']} ms |")
    print(f"\nwrote {RESULTS}/turns.json, campaign.json, eod.json and (when it ran) scaling.json")
    written = all(a == b for a, b in (result["plans_asked_recorded"], result["promises_asked_recorded"]))
    return 0 if result["lost_messages"] == 0 and written else 1


if __name__ == "__main__":
    sys.exit(main())
