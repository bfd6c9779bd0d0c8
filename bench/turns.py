"""Turn latency: scripted Chinese conversations through the gateway vs straight to Rasa.

Both paths use the same running Rasa server, model and action server in the same run,
so the gateway's overhead is reported as a ratio. Loopback only; bounded in count.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from scripts.demo import DEMO

# One holder's conversation: verify, ask the amount and why, thank.
SCRIPT = [
    "你好",
    "{phone}",
    "身份证后四位{id4}，卡号后四位{card4}",
    "我现在欠多少钱",
    "利息怎么算的",
    "会上征信吗",
    "谢谢",
]


def script_for(i: int) -> list[str]:
    _, _, phone, id4, card4, *_ = DEMO[1 + i % (len(DEMO) - 1)]
    return [t.format(phone=phone, id4=id4, card4=card4) for t in SCRIPT]


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    elapsed: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else 0.0

        return {
            "turns": len(lat),
            "errors": self.errors,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else 0.0,
            "turns_per_s": round(len(lat) / self.elapsed, 1) if self.elapsed else 0.0,
        }


async def _conversation(client: httpx.AsyncClient, target: str, base: str, i: int, run: Run, tag: str) -> None:
    cid = f"bench-{tag}-{uuid.uuid4().hex[:10]}"
    for text in script_for(i):
        start = time.perf_counter()
        run.sent += 1
        try:
            if target == "gateway":
                r = await client.post(f"{base}/v1/chat/{cid}/messages", json={"text": text})
                ok = r.status_code == 200 and r.json().get("mode") == "bot"
            else:
                r = await client.post(f"{base}/webhooks/rest/webhook", json={"sender": cid, "message": text})
                ok = r.status_code == 200 and isinstance(r.json(), list)
        except httpx.HTTPError:
            ok = False
        if ok:
            run.latencies.append(time.perf_counter() - start)
        else:
            run.errors += 1


async def measure(target: str, base: str, concurrency: int, conversations: int, tag: str) -> Run:
    """Play `conversations` scripted conversations, `concurrency` at a time."""
    run = Run()
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await _conversation(client, target, base, i, run, tag)

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(conversations)))
        run.elapsed = time.perf_counter() - start
    return run


async def compare(
    gateway: str, rasa: str, levels: list[int], conversations_per_level: int, progress: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """For each concurrency level: bare Rasa, then the gateway, and the p50 ratio.

    Also returns how many messages were sent to the gateway in all, to compare with the transcript.
    """
    rows = []
    await measure("rasa", rasa, 2, 2, "warm")  # first turns load caches; not counted
    sent = (await measure("gateway", gateway, 2, 2, "warm")).sent
    for level in levels:
        n = max(conversations_per_level, level)
        bare = (await measure("rasa", rasa, level, n, f"r{level}")).summary()
        gw_run = await measure("gateway", gateway, level, n, f"g{level}")
        sent += gw_run.sent
        gw = gw_run.summary()
        ratio = round(gw["p50_ms"] / bare["p50_ms"], 2) if bare["p50_ms"] else None
        rows.append({"concurrency": level, "bare_rasa": bare, "gateway": gw, "p50_ratio": ratio})
        if progress:
            print(
                f"  c={level:<3} bare p50 {bare['p50_ms']:7.1f} ms  gateway p50 {gw['p50_ms']:7.1f} ms "
                f"p99 {gw['p99_ms']:7.1f} ms  {gw['turns_per_s']:6.1f} turns/s  ratio {ratio}",
                flush=True,
            )
    return rows, sent
