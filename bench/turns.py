"""Turn latency: scripted Chinese conversations through the gateway vs straight to Rasa.

Both paths use the same running Rasa server, model and action server in the same run,
so the gateway's overhead is reported as a ratio. Loopback only; bounded in count.

Every conversation has its own freshly imported holder (`make_holders`), so each one can
verify, ask what it owes and why, then agree an installment plan or record a promise, and
the ledger can be checked afterwards for what the chat wrote.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from ledger.accounts import AccountRecord, upsert_account
from ledger.db import transaction

VERIFY = ["你好", "{phone}", "身份证后四位{id4}，卡号后四位{card4}", "我现在欠多少钱"]
# Half the conversations agree a plan, half promise a payment; both end with thanks.
PLAN = [*VERIFY, "利息怎么算的", "我想分6期", "好的", "谢谢"]
# "三天后": inside every bucket's promise window (policy.yml: promise_max_days >= 7) on any day.
PROMISE = [*VERIFY, "会上征信吗", "我三天后还500", "对的", "谢谢"]
TURNS = len(PLAN)
assert len(PROMISE) == TURNS


@dataclass(frozen=True)
class Holder:
    phone: str
    id4: str
    card4: str


def make_holders(
    database_url: str, n: int, today: date, start: int = 0, timezone: str = "Asia/Shanghai"
) -> list[Holder]:
    """Import `n` M1 holders (12 days overdue, 8,000 yuan) for the load; phones 137xxxxxxxx."""
    holders = []
    with transaction(database_url) as session:
        for i in range(start, start + n):
            h = Holder(f"137{i:08d}", f"{i % 10000:04d}", f"{(i * 7) % 10000:04d}")
            due = today - timedelta(days=12)
            upsert_account(
                session,
                AccountRecord(
                    account_id=f"bench-{i:08d}",
                    holder_name="压测用户",
                    phone=h.phone,
                    id_last4=h.id4,
                    card_last4=h.card4,
                    credit_limit=2_000_000,
                    statement_balance=800_000,
                    minimum_payment=80_000,
                    statement_date=due - timedelta(days=20),
                    due_date=due,
                    paid_since_statement=0,
                    timezone=timezone,
                ),
                actor="bench",
            )
            holders.append(h)
    return holders


def script_for(holder: Holder, i: int) -> list[str]:
    script = PLAN if i % 2 == 0 else PROMISE
    return [t.format(phone=holder.phone, id4=holder.id4, card4=holder.card4) for t in script]


FAILED = math.inf  # a failed turn's latency: it counts, and never as a fast one


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # every turn sent; a failed one as FAILED
    errors: int = 0
    sent: int = 0
    elapsed: float = 0.0
    plans: int = 0  # conversations that asked for a plan
    promises: int = 0  # conversations that made a promise

    def summary(self) -> dict[str, Any]:
        """Percentiles over every turn, failures included (a percentile that falls on one is None)."""
        lat = sorted(self.latencies)
        answered = [x for x in lat if x != FAILED]

        def pct(p: float) -> float | None:
            if not lat:
                return 0.0
            x = lat[min(len(lat) - 1, int(p * len(lat)))]
            return None if x == FAILED else round(x * 1000, 1)

        return {
            "turns": len(lat),
            "errors": self.errors,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(answered) * 1000, 1) if answered else 0.0,  # answered turns only
            "turns_per_s": round(len(answered) / self.elapsed, 1) if self.elapsed else 0.0,
        }


async def _conversation(
    client: httpx.AsyncClient, target: str, base: str, holder: Holder, i: int, run: Run, tag: str
) -> None:
    cid, headers = f"bench-{tag}-{uuid.uuid4().hex[:10]}", {}
    if target == "gateway":  # a web session first (not timed): the server chooses the id
        opened = (await client.post(f"{base}/v1/chat/sessions", json={})).json()
        cid, headers = opened["conversation_id"], {"Authorization": f"Bearer {opened['session_token']}"}
    else:  # bare Rasa's REST channel takes only callers holding the channel secret
        headers = {"X-Channel-Secret": os.environ.get("RASA_CHANNEL_SECRET", "")}
    if i % 2 == 0:
        run.plans += 1
    else:
        run.promises += 1
    for text in script_for(holder, i):
        start = time.perf_counter()
        run.sent += 1
        try:
            if target == "gateway":
                r = await client.post(f"{base}/v1/chat/{cid}/messages", json={"text": text}, headers=headers)
                ok = r.status_code == 200 and r.json().get("mode") == "bot"
            else:
                r = await client.post(
                    f"{base}/webhooks/rest/webhook", json={"sender": cid, "message": text}, headers=headers
                )
                ok = r.status_code == 200 and isinstance(r.json(), list)
        except httpx.HTTPError:
            ok = False
        run.latencies.append(time.perf_counter() - start if ok else FAILED)
        if not ok:
            run.errors += 1


async def measure(
    target: str,
    base: str,
    concurrency: int,
    conversations: int,
    tag: str,
    holders: Iterator[Holder],
    first: int = 0,
) -> Run:
    """Play `conversations` scripted conversations, `concurrency` at a time, one fresh holder each;
    `first` numbers them on from an earlier round (even: a plan, odd: a promise)."""
    run = Run()
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int, holder: Holder) -> None:
            async with sem:
                await _conversation(client, target, base, holder, i, run, tag)

        start = time.perf_counter()
        numbers = range(first, first + conversations)
        await asyncio.gather(*(one(i, h) for i, h in zip(numbers, holders, strict=False)))
        run.elapsed = time.perf_counter() - start
    return run


def holders_needed(levels: list[int], conversations_per_level: int, min_rounds: int = 1) -> int:
    """How many holders `compare` uses per stack: two warm-up runs, then bare and gateway at each level."""
    return 4 + sum(2 * _conversations_at(level, conversations_per_level, min_rounds) for level in levels)


def _conversations_at(level: int, conversations_per_level: int, min_rounds: int) -> int:
    return max(conversations_per_level, level, level * min_rounds)


def merge(runs: list[Run]) -> Run:
    """One run from several rounds: all their turns, their time added up."""
    out = Run()
    for r in runs:
        out.latencies += r.latencies
        out.errors += r.errors
        out.sent += r.sent
        out.elapsed += r.elapsed
        out.plans += r.plans
        out.promises += r.promises
    return out


def machine_speed_ms() -> float:
    """A fixed pure-Python loop, timed: a shared machine's speed drifts, and this shows by how much."""
    start = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i * i
    return round((time.perf_counter() - start) * 1000, 1)


@dataclass
class Target:
    """A running stack to measure: its gateway and Rasa, holders in its ledger, its processes' CPU."""

    gateway: str
    rasa: str
    holders: list[Holder]
    cpu: Callable[[], dict[str, float]] | None = None  # each process's CPU seconds so far


async def compare(
    gateway: str,
    rasa: str,
    levels: list[int],
    conversations_per_level: int,
    holders: list[Holder],
    progress: bool = True,
    cpu: Callable[[], dict[str, float]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """For each concurrency level: bare Rasa, then the gateway, and the p50 ratio.

    Also returns totals: messages sent to the gateway (to compare with the transcript) and the
    plans and promises asked for on both paths (to compare with the ledger). `cpu`, when given,
    reads each process's CPU seconds so far; each path's CPU per turn is then reported.
    """
    out = await compare_stacks({"": Target(gateway, rasa, holders, cpu)}, levels, conversations_per_level, progress)
    return out[""]


async def compare_stacks(
    targets: dict[str, Target],
    levels: list[int],
    conversations_per_level: int,
    progress: bool = True,
    min_rounds: int = 1,
) -> dict[str, tuple[list[dict[str, Any]], dict[str, int]]]:
    """`compare` for several running stacks at once, their rounds interleaved.

    At each level every stack plays rounds of `level` conversations, bare Rasa and the gateway in
    turn, and the stacks take turns round by round (the order rotating), so a slow spell of a
    shared machine falls on all of them alike instead of on whichever ran last. At least
    `min_rounds` rounds per level (more conversations at a high level, when asked)."""
    for name, t in targets.items():
        if len(t.holders) < holders_needed(levels, conversations_per_level, min_rounds):
            raise ValueError(f"not enough holders for {name or 'the stack'}: see holders_needed()")
    pools = {name: iter(t.holders) for name, t in targets.items()}
    runs: dict[str, list[Run]] = {name: [] for name in targets}
    sent = dict.fromkeys(targets, 0)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for name, t in targets.items():  # first turns load caches; not counted
        runs[name].append(await measure("rasa", t.rasa, 2, 2, "warm", pools[name]))
        warm_gw = await measure("gateway", t.gateway, 2, 2, "warm", pools[name])
        runs[name].append(warm_gw)
        sent[name] += warm_gw.sent
    order = [(name, path) for name in targets for path in ("rasa", "gateway")]
    for level in levels:
        n = _conversations_at(level, conversations_per_level, min_rounds)
        rounds = max(1, n // level)
        played: dict[tuple[str, str], list[Run]] = {key: [] for key in order}
        used: dict[tuple[str, str], dict[str, float]] = {key: {} for key in order}
        speeds = [machine_speed_ms()]
        done = 0
        for r in range(rounds):
            size = n // rounds + (1 if r < n % rounds else 0)
            turn = r % len(order)
            for name, path in order[turn:] + order[:turn]:
                t = targets[name]
                before = t.cpu() if t.cpu else {}
                base = t.rasa if path == "rasa" else t.gateway
                tag = f"{path[0]}{level}"
                played[(name, path)].append(await measure(path, base, level, size, tag, pools[name], first=done))
                for proc, seconds in (t.cpu() if t.cpu else {}).items():
                    used[(name, path)][proc] = used[(name, path)].get(proc, 0.0) + seconds - before.get(proc, 0.0)
            done += size
        speeds.append(machine_speed_ms())
        for name in targets:
            bare_run, gw_run = merge(played[(name, "rasa")]), merge(played[(name, "gateway")])
            runs[name] += [bare_run, gw_run]
            sent[name] += gw_run.sent
            bare, gw = bare_run.summary(), gw_run.summary()
            ratio = round(gw["p50_ms"] / bare["p50_ms"], 2) if gw["p50_ms"] and bare["p50_ms"] else None
            rows[name].append(
                {
                    "concurrency": level,
                    "rounds": rounds,
                    "bare_rasa": bare,
                    "gateway": gw,
                    "p50_ratio": ratio,
                    "machine_speed_ms_before_after": speeds,
                    "cpu_ms_per_turn": {
                        label: {
                            k: round(1000 * v / max(1, len(run.latencies)), 1) for k, v in used[(name, path)].items()
                        }
                        for label, path, run in (("bare_rasa", "rasa", bare_run), ("gateway", "gateway", gw_run))
                    },
                }
            )
            if progress:
                print(
                    f"  {name + ' ' if name else ''}c={level:<3} bare p50 {bare['p50_ms']} ms  gateway p50 "
                    f"{gw['p50_ms']} ms p99 {gw['p99_ms']} ms  {gw['turns_per_s']} turns/s  errors "
                    f"{gw['errors']}+{bare['errors']}  ratio {ratio}",
                    flush=True,
                )
    return {
        name: (
            rows[name],
            {
                "gateway_sent": sent[name],
                "plans_asked": sum(r.plans for r in runs[name]),
                "promises_asked": sum(r.promises for r in runs[name]),
            },
        )
        for name in targets
    }
