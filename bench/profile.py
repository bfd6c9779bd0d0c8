"""Where a turn's CPU goes: py-spy on every process while 10 conversations (PROFILE_CONCURRENCY)
run through the gateway at once.

`make profile` -> var/profile/<process>.txt (collapsed stacks, for flame graphs) and a summary of
the functions with the most samples, inclusive and self, for each process.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.turns import make_holders, measure
from ledger.clock import Clock
from scripts.stack import ROOT, Stack, free_port, prepare

OUT = ROOT / "var" / "profile"


OUR_PACKAGES = ("api/", "ledger/", "actions/", "bot/", "scripts/")


def _library(frame: str) -> str:
    """`do_execute (sqlalchemy/engine/default.py:1192)` -> `sqlalchemy`; stdlib modules by file name."""
    where = frame.rsplit("(", 1)[-1].rstrip(")")
    return where.split("/")[0].split(".py")[0].split(":")[0] or "?"


def summarise(collapsed: Path, top: int = 25) -> str:
    """Top functions by inclusive and by self samples, from py-spy's raw (collapsed) output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    libraries: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
        libraries[_library(frames[-1])] += n
        mine = [f for f in frames if f.split("(")[-1].startswith(OUR_PACKAGES)]
        ours[mine[-1] if mine else "(none of ours)"] += n
    if not total:
        return "  (no samples)\n"
    lines = [f"  {total} samples"]
    for title, counter in (
        ("by library of the running frame", libraries),
        ("by our function responsible (nearest frame of ours)", ours),
        ("inclusive", inclusive),
        ("self", own),
    ):
        lines.append(f"  -- {title} --")
        lines += [f"  {100 * n / total:5.1f}%  {frame[:150]}" for frame, n in counter.most_common(top)]
    return "\n".join(lines) + "\n"


def main() -> int:
    spy = shutil.which("py-spy", path=f"{ROOT / '.venv/app/bin'}:{os.environ.get('PATH', '')}")
    if not spy:
        print("py-spy is not installed (it is in requirements/dev.in)", file=sys.stderr)
        return 1
    conversations = int(os.environ.get("PROFILE_CONVERSATIONS", "60"))
    concurrency = int(os.environ.get("PROFILE_CONCURRENCY", "10"))  # 1: one conversation at a time
    only = os.environ.get("PROFILE_PROCESSES", "rasa,actions,gateway").split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        # PROFILE_DATABASE_URL / TRACKER_STORE_URL profile the PostgreSQL set-up instead (fresh databases).
        url = os.environ.get("PROFILE_DATABASE_URL") or f"sqlite+pysqlite:///{var / 'profile.db'}"
        secrets = prepare(url, var)
        holders = iter(make_holders(url, conversations + 4, Clock.system("Asia/Shanghai").today()))
        stack = Stack(
            var=var,
            database_url=url,
            ports={"rasa": free_port(), "actions": free_port(), "gateway": free_port()},
            env_extra={
                "RASA_TIMEOUT_SECONDS": "30",
                "RATE_LIMIT_PER_MINUTE": "1000000",
                **{k: os.environ[k] for k in ("TRACKER_STORE_URL", "REDIS_URL") if os.environ.get(k)},
            },
        )
        stack.start(secrets)
        try:
            stack.wait_healthy(timeout=300)
            gateway = f"http://127.0.0.1:{stack.ports['gateway']}"
            asyncio.run(measure("gateway", gateway, 4, 4, "warm", holders))
            spies = {
                name: subprocess.Popen(
                    [
                        spy,
                        "record",
                        "-p",
                        str(proc.pid),
                        "-f",
                        "raw",
                        "-r",
                        "200",
                        "--subprocesses",
                        "--gil",  # threads holding the GIL: CPU, not waiting
                        "--nonblocking",
                        "-o",
                        str(OUT / f"{name}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name, proc in stack.procs.items()
                if name in only
            }
            run = asyncio.run(measure("gateway", gateway, concurrency, conversations, "prof", holders))
            for spy_proc in spies.values():
                spy_proc.send_signal(signal.SIGINT)
            for spy_proc in spies.values():
                spy_proc.wait(timeout=60)
            print(f"{concurrency} concurrent: {run.summary()}")
        finally:
            stack.stop()
    for name in only:
        print(f"== {name} ==")
        print(summarise(OUT / f"{name}.txt"))
    print(f"collapsed stacks in {OUT}/ (feed to flamegraph.pl or speedscope)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
