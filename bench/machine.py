"""Describe the machine and commit a result was measured on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any


def describe() -> dict[str, Any]:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")), ""
        )
    mem_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        mem_kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        # Code changed since that commit (results and Markdown aside) is said, so no run passes for the commit's.
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results", ":!*.md"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if commit and changed:
            commit += "+changes"
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        # Other work on the machine moves every figure: the load when the run was described.
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
    }


def record(results: Path, name: str, result: dict[str, Any]) -> None:
    """`name`.json holds the latest run (what the README quotes); `name`-runs.jsonl keeps every
    run, one line each, whatever its figures."""
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    with (results / f"{name}-runs.jsonl").open("a", encoding="utf-8") as runs:
        runs.write(json.dumps(result, ensure_ascii=False) + "\n")


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_databases(*names: str) -> None:
    """Empty PostgreSQL databases `names`, dropped first if they exist."""
    import psycopg  # the app environment's; Rasa-side benchmarks never call this

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")


def drop_databases(*names: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def on_scratch_postgres(name: str, measure: Callable[[str], dict[str, Any]], label: str) -> dict[str, Any]:
    """`measure(url)` on a fresh PostgreSQL database `name`, dropped afterwards; a note saying so
    when PostgreSQL does not answer."""
    import psycopg

    try:
        fresh_databases(name)
    except psycopg.Error as exc:
        return {"skipped": f"PostgreSQL not reachable: {type(exc).__name__}"}
    print(f"  PostgreSQL, {label} ...", flush=True)
    try:
        result = measure(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        if "accounts_per_s" in result:
            print(f"    {result['accounts_per_s']} accounts/s", flush=True)
        return result
    finally:
        drop_databases(name)
