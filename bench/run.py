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
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import campaign as campaign_bench
from bench import eod as eod_bench
from bench import scaling as scaling_bench
from bench.machine import describe, record
from bench.turns import compare, holders_needed, make_holders
from ledger.clock import Clock
from ledger.db import transaction
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


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far, in seconds."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


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


def run_turns(levels: list[int], conversations: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        given = os.environ.get("DATABASE_URL", "")
        url = given if given.startswith("postgresql") else f"sqlite+pysqlite:///{var / 'bench.db'}"
        secrets = prepare(url, var)
        os.environ.setdefault("RASA_CHANNEL_SECRET", secrets["RASA_CHANNEL_SECRET"])  # bare Rasa's REST channel
        first = _first_free_holder(url)
        needed = holders_needed(levels, conversations)
        holders = make_holders(url, needed, Clock.system("Asia/Shanghai").today(), start=first)
        ours = select(Account.id).where(Account.account_id >= f"bench-{first:08d}", Account.account_id.like("bench-%"))
        user_messages = select(func.count()).select_from(Message).where(Message.sender == "user")
        with transaction(url) as s:
            stored_before = s.scalar(user_messages) or 0
        stack = Stack(
            var=var,
            database_url=url,
            ports={"rasa": free_port(), "actions": free_port(), "gateway": free_port()},
            env_extra={"RASA_TIMEOUT_SECONDS": "30", "RATE_LIMIT_PER_MINUTE": "1000000"},
        )
        t0 = time.monotonic()
        stack.start(secrets)
        try:
            startup = stack.wait_healthy(timeout=300)
            print(f"  stack healthy in {startup:.1f}s", flush=True)
            gw, rasa = (f"http://127.0.0.1:{stack.ports[k]}" for k in ("gateway", "rasa"))

            def cpu() -> dict[str, float]:
                return {name: cpu_seconds(p.pid) for name, p in stack.procs.items()}

            rows, totals = asyncio.run(compare(gw, rasa, levels, conversations, holders, cpu=cpu))
            memory = {name: rss_mib(p.pid) for name, p in stack.procs.items()}
            with transaction(url) as s:  # this run's: the database may hold earlier runs'
                stored_user = (s.scalar(user_messages) or 0) - stored_before
                plans = s.scalar(select(func.count()).select_from(Plan).where(Plan.account_pk.in_(ours)))
                promises = s.scalar(select(func.count()).select_from(Promise).where(Promise.account_pk.in_(ours)))
            return {
                "database": url.split(":")[0],
                "startup_s": round(startup, 1),
                "wall_s": round(time.monotonic() - t0, 1),
                "levels": rows,
                "memory_rss_mib": memory,
                "gateway_messages_sent": totals["gateway_sent"],
                "gateway_messages_stored": stored_user,
                "lost_messages": totals["gateway_sent"] - (stored_user or 0),
                # Both paths negotiate through the same action server, so both write to the ledger.
                "plans_asked_recorded": [totals["plans_asked"], plans],
                "promises_asked_recorded": [totals["promises_asked"], promises],
            }
        finally:
            stack.stop()


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
