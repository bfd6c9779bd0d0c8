"""`make campaign`: create a campaign from the command line and send what is due, with progress bars.

python -m scripts.campaign --name 12月提醒 --buckets M1,M2 [--template reminder] [--send-at ISO]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

import httpx
from tqdm import tqdm

from jobs.campaign_sender import CampaignSender, check_template
from ledger import campaigns
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.policy import Policy, cached_policy
from settings import Settings, get_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--buckets", default="", help="comma-separated, e.g. M1,M2")
    parser.add_argument("--min-overdue-days", type=int)
    parser.add_argument("--max-overdue-days", type=int)
    parser.add_argument("--template", default="reminder")
    parser.add_argument("--send-at", type=datetime.fromisoformat)
    parser.add_argument("--no-send", action="store_true", help="only select and queue")
    args = parser.parse_args()
    settings = get_settings()
    policy = cached_policy(str(settings.policy_path))
    clock = process_clock(settings.app_timezone)
    problem = check_template(args.template, policy)
    if problem:
        print(f"refused: {problem}", file=sys.stderr)
        return 2
    segment = campaigns.Segment(
        tuple(b for b in args.buckets.split(",") if b), args.min_overdue_days, args.max_overdue_days
    )
    db = Database(settings.database_url)
    try:
        return _run(args, settings, policy, clock, segment, db)
    finally:
        db.dispose()


def _run(
    args: argparse.Namespace,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    segment: campaigns.Segment,
    db: Database,
) -> int:
    with db.transaction() as session, tqdm(desc="select + check + queue", unit="acct") as bar:
        result = campaigns.create_campaign(
            session,
            args.name,
            segment,
            args.template,
            args.send_at,
            policy.contact,
            clock,
            progress=lambda n: bar.update(n - bar.n),
        )
        campaign_id = result.campaign.campaign_id
    print(f"{campaign_id}: selected {result.selected}, queued {result.queued}, skipped {dict(result.skipped)}")
    if args.no_send:
        return 0

    async def send() -> int:
        async with httpx.AsyncClient() as http:
            sender = CampaignSender(settings, policy, http, clock, db=db)
            total = 0
            with tqdm(desc="send due now", unit="sms") as bar:
                while sent := await sender.run_once(limit=500):
                    total += sent
                    bar.update(sent)
            return total

    sent = asyncio.run(send())
    print(f"sent {sent} now; later ones (quiet hours) go out from the gateway when their window opens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
