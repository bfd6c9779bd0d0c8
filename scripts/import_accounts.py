"""`make import ARGS=book.jsonl`: import a book of accounts from a JSON-lines or CSV file, all or nothing.

python -m scripts.import_accounts FILE.jsonl|FILE.csv [--chunk 10000] [--rejected rejected.csv]

Each row is checked as `POST /v1/accounts` checks one account (a CSV has a header of its field
names; an empty cell leaves a field out; flags separated by |). The file is read in chunks in one
transaction: new accounts are written in bulk (COPY on PostgreSQL), accounts already in the book
re-imported as `POST /v1/accounts` re-imports them. If any row is rejected, nothing is imported:
the rejected rows are listed (line and reason; `--rejected` writes them all to a CSV file) and the
command exits with status 1.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import IO

from tqdm import tqdm

from api.account_batch import check_row, csv_rows, jsonl_rows
from ledger.account_import import BatchRejected, BookImport, ImportReport
from ledger.clock import process_clock
from ledger.db import Database
from settings import get_settings

SHOWN = 20  # rejected rows printed; --rejected writes them all


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _counted(lines: IO[str], bar: tqdm[object]) -> Iterator[str]:
    for line in lines:
        bar.update(1)
        yield line


def import_file(
    path: Path, db: Database, chunk: int = 10_000, quiet: bool = False, overlap: bool = True
) -> ImportReport:
    """Import `path` into `db` in one transaction; BatchRejected (nothing imported) if any row is rejected.

    Two steps overlap: while one chunk is written (the database busy with it), the next is read
    and checked; the writing is one thread, so the session is never used by two at once."""
    clock = process_clock(get_settings().app_timezone)
    with (
        path.open(encoding="utf-8-sig", newline="") as lines,
        tqdm(total=count_lines(path), unit="lines", desc="check + import", disable=quiet) as bar,
        db.transaction() as session,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as writer,
    ):
        source = _counted(lines, bar)
        rows = csv_rows(source) if path.suffix.lower() == ".csv" else jsonl_rows(source)
        book = BookImport(session, clock.now(), actor="import", max_reported=10**7)
        pending: Future[None] | None = None
        while batch := list(islice(rows, chunk)):
            checked = [check_row(line, raw) for line, raw in batch]
            if pending is not None:
                pending.result()
                bar.set_postfix(rejected=book.report.rejected_count, refresh=False)
            if overlap:
                pending = writer.submit(book.add, checked)
            else:
                book.add(checked)
        if pending is not None:
            pending.result()
        return book.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--chunk", type=int, default=10_000, help="rows checked and written at a time")
    parser.add_argument("--rejected", type=Path, help="write every rejected row (line, field, reason) to this CSV")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    db = Database(get_settings().database_url)
    try:
        report = import_file(args.file, db, args.chunk)
    except BatchRejected as refused:
        rejected = refused.report.rejected
        print(f"{refused.message}:", file=sys.stderr)
        for row in rejected[:SHOWN]:
            print(f"  line {row.line}: {row.reason}", file=sys.stderr)
        if len(rejected) > SHOWN:
            print(f"  ... and {len(rejected) - SHOWN} more", file=sys.stderr)
        if args.rejected:
            with args.rejected.open("w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(("line", "field", "reason"))
                writer.writerows((r.line, r.field or "", r.reason) for r in rejected)
            print(f"all {len(rejected)} in {args.rejected}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(f"imported {report.rows} rows: {report.created} new accounts, {report.updated} re-imported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
