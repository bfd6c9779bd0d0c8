"""End-of-day processing from the command line: `make eod` (or `python -m scripts.eod [--force]`).

Brings every running plan and open promise up to today and sends the broken-plan notices the
contact rules allow now. Safe to run twice; after downtime one run catches up.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx

from jobs.eod import run_once
from ledger.clock import process_clock
from ledger.db import Database
from ledger.policy import load_policy
from settings import get_settings


async def main(force: bool) -> None:
    settings = get_settings()
    policy = load_policy(settings.policy_path)
    db = Database(settings.database_url)
    try:
        async with httpx.AsyncClient() as http:
            summary = await run_once(settings, policy, process_clock(settings.app_timezone), http, force=force, db=db)
    finally:
        db.dispose()
    if summary is None:
        print("end-of-day: already done today (use --force to run again)")
    else:
        print(json.dumps({"business_date": summary.business_date.isoformat(), **summary.as_dict()}, ensure_ascii=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="run again even if today's run is done")
    asyncio.run(main(parser.parse_args().force))
