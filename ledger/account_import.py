"""Importing a book: many accounts at once, every row checked, all or nothing.

Each row is checked by the same rules as one account imported alone (`accounts.validate_record`),
and a batch also refuses an account_id given twice. Accounts the book does not hold yet are
written in bulk (PostgreSQL: COPY; SQLite: executemany), with what `accounts.upsert_account`
would write for each: the holder, the account, its statement, the person's contact preferences
(carried over from another card of the same phone), the holds its flags ask for, an audit row.
An account the book holds already goes through `upsert_account` itself, so a re-import behaves
exactly as it does alone: the statement is replaced, never added to (no doubled balance or
charge), and a new statement is refused while a plan or promise runs.

The first rejected row stops the writing; the other rows are still checked, so the report names
every rejected row, and `finish` raises `BatchRejected`, which rolls the caller's transaction back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ledger.accounts import (
    DEFAULT_PREFERENCES,
    HOLD_FLAGS,
    AccountRecord,
    AgreementRunning,
    audit,
    refuse_new_statement_during_a_plan,
    upsert_account,
    validate_record,
)
from ledger.errors import ValidationFailed
from ledger.models import Account, AuditLog, Cardholder, ContactPreference, Hold, Statement
from ledger.sql import among, bulk_insert

MAX_REPORTED = 1000  # rejected rows named in a report; the count says how many there were in all


@dataclass(frozen=True)
class Accepted:
    line: int
    record: AccountRecord


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    field: str | None = None


Checked = Accepted | Rejected


def check_record(line: int, record: AccountRecord) -> Checked:
    """The ledger's rules for one import record (as `POST /v1/accounts` applies them)."""
    try:
        validate_record(record)
    except ValidationFailed as exc:
        where = exc.details.get("field")
        return Rejected(line, exc.message, where if isinstance(where, str) else None)
    return Accepted(line, record)


@dataclass
class Duplicates:
    """An account_id given twice in one batch is refused on its second line: which of the two
    should win is the sender's to say."""

    first_line: dict[str, int] = field(default_factory=dict)

    def check(self, row: Checked) -> Checked:
        if isinstance(row, Rejected):
            return row
        first = self.first_line.setdefault(row.record.account_id, row.line)
        if first != row.line:
            return Rejected(row.line, f"account_id {row.record.account_id} is already on line {first}", "account_id")
        return row


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected_count: int = 0
    rejected: list[Rejected] = field(default_factory=list)  # the first `max_reported`
    max_reported: int = MAX_REPORTED

    def reject(self, row: Rejected) -> None:
        self.rejected_count += 1
        if len(self.rejected) < self.max_reported:
            self.rejected.append(row)

    def rejected_details(self) -> list[dict[str, object]]:
        return [{"line": r.line, "reason": r.reason, "field": r.field} for r in self.rejected]


class BatchRejected(ValidationFailed):
    """Some rows of a batch were rejected: nothing of it was imported."""

    code = "batch_rejected"

    def __init__(self, report: ImportReport) -> None:
        super().__init__(
            f"{report.rejected_count} of {report.rows} rows were rejected; nothing was imported",
            rows=report.rows,
            rejected_count=report.rejected_count,
            rejected=report.rejected_details(),
        )
        self.report = report


class BookImport:
    """One import in the caller's transaction: `add` chunks of checked rows, then `finish`."""

    def __init__(
        self, session: Session, now: datetime, actor: str = "import", max_reported: int = MAX_REPORTED
    ) -> None:
        self.session = session
        self.now = now
        self.actor = actor
        self.report = ImportReport(max_reported=max_reported)
        self.duplicates = Duplicates()
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self._stopped = False  # a row was rejected: check the rest, write nothing more

    @property
    def writing(self) -> bool:
        return self.report.rejected_count == 0 and not self._stopped

    def add(self, rows: Sequence[Checked]) -> None:
        """Check a chunk against the batch and the book, then write it unless something was rejected."""
        self.report.rows += len(rows)
        accepted: list[Accepted] = []
        rejected: list[Rejected] = []
        for row in rows:
            checked = self.duplicates.check(row)
            if isinstance(checked, Rejected):
                rejected.append(checked)
            else:
                accepted.append(checked)
        self._stopped = self._stopped or bool(rejected)
        known = set(
            self.session.scalars(
                select(Account.account_id).where(
                    among(self.session, Account.account_id, [r.record.account_id for r in accepted])
                )
            )
        )
        new = [r for r in accepted if r.record.account_id not in known]
        for row in (r for r in accepted if r.record.account_id in known):
            refused = self._reimport(row)
            if refused is not None:
                rejected.append(refused)
                self._stopped = True
        if self.writing and new:
            self._write_new([r.record for r in new])
            self.report.created += len(new)
        for row in sorted(rejected, key=lambda r: r.line):
            self.report.reject(row)

    def finish(self) -> ImportReport:
        """The report; raises BatchRejected (the caller's transaction rolls back) if any row was rejected."""
        if not self.writing:
            raise BatchRejected(self.report)
        audit(self.session, self.actor, "accounts.import", f"{self.report.rows} rows", at=self.now,
              created=self.report.created, updated=self.report.updated)  # fmt: skip
        self.session.flush()
        return self.report

    def _reimport(self, row: Accepted) -> Rejected | None:
        """An account the book holds: exactly what importing it alone does, or its refusal."""
        try:
            if self.writing:
                upsert_account(self.session, row.record, actor=self.actor)
                self.report.updated += 1
            else:
                account = self.session.scalar(select(Account).where(Account.account_id == row.record.account_id))
                assert account is not None
                refuse_new_statement_during_a_plan(self.session, account, row.record)
        except AgreementRunning as exc:
            return Rejected(row.line, exc.message, "statement_date")
        return None

    def _write_new(self, records: list[AccountRecord]) -> None:
        holder_ids = self._ids("cardholders", len(records))
        account_ids = self._ids("accounts", len(records))
        known = self._known_preferences({r.phone for r in records})
        # Written as COPY's text once, not once per row (PostgreSQL); SQLite takes the datetime.
        now: object = self.now.isoformat() if self.postgres else self.now
        defaults = [(channel, value, None, now, None, None) for channel, value in DEFAULT_PREFERENCES.items()]
        holders, accounts, statements, prefs, holds, audits = [], [], [], [], [], []
        for rec, holder, pk in zip(records, holder_ids, account_ids, strict=True):
            holders.append((holder, rec.holder_name, rec.phone, rec.id_last4, rec.timezone, now))
            accounts.append((pk, rec.account_id, holder, rec.card_last4, rec.credit_limit,
                             rec.daily_interest_rate, rec.late_fee_rate, now, now))  # fmt: skip
            statements.append((pk, rec.statement_date, rec.due_date, rec.statement_balance, rec.minimum_payment,
                               rec.paid_since_statement, rec.interest_start))  # fmt: skip
            carried = known.get(rec.phone)
            if carried is None:
                prefs += [(holder, *default) for default in defaults]
            else:
                merged: dict[str, str] = {**dict(DEFAULT_PREFERENCES.items()), **{c: p[0] for c, p in carried.items()}}
                for channel, value in merged.items():
                    was = carried.get(channel)
                    prefs.append((holder, channel, *(was if was is not None else (value, None, now, None, None))))
            holds += [(pk, kind, "import flag", True, now) for kind in HOLD_FLAGS if kind in rec.flags]
            audits.append((now, self.actor, "account.upsert", rec.account_id, "{}"))
        self._bulk(Cardholder, ("id", "name", "phone", "id_last4", "timezone", "created_at"), holders)
        self._bulk(Account, ("id", "account_id", "cardholder_id", "card_last4", "credit_limit",
                             "daily_interest_rate", "late_fee_rate", "created_at", "updated_at"), accounts)  # fmt: skip
        self._bulk(Statement, ("account_pk", "statement_date", "due_date", "statement_balance", "minimum_payment",
                               "paid_since_statement", "interest_start"), statements)  # fmt: skip
        self._bulk(ContactPreference, ("cardholder_id", "channel", "value", "rules", "changed_at", "asked_by",
                                       "source"), prefs)  # fmt: skip
        self._bulk(Hold, ("account_pk", "kind", "reason", "active", "created_at"), holds)
        self._bulk(AuditLog, ("at", "actor", "action", "subject", "detail"), audits)

    def _known_preferences(self, phones: Iterable[str]) -> dict[str, dict[str, tuple[Any, ...]]]:
        """Per phone, per channel, the person's latest preference (value, rules, changed_at, asked_by,
        source): a new card of a known person starts with them, as `upsert_account` does."""
        out: dict[str, dict[str, tuple[Any, ...]]] = {}
        rows = self.session.execute(
            select(
                Cardholder.phone,
                ContactPreference.channel,
                ContactPreference.value,
                ContactPreference.rules,
                ContactPreference.changed_at,
                ContactPreference.asked_by,
                ContactPreference.source,
            )
            .join(Cardholder, Cardholder.id == ContactPreference.cardholder_id)
            .where(among(self.session, Cardholder.phone, sorted(phones)))
            .order_by(ContactPreference.changed_at)
        )
        for phone, channel, value, rules, changed_at, asked_by, source in rows:
            out.setdefault(phone, {})[channel] = (value, rules, changed_at, asked_by, source)
        return out

    def _ids(self, table: str, n: int) -> list[int]:
        """`n` primary keys for `table`, taken from its sequence (PostgreSQL) or after its largest
        (SQLite, whose writer lock this transaction holds from its first statement)."""
        if self.postgres:
            return list(
                self.session.scalars(
                    text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                    {"t": table, "n": n},
                )
            )
        pk = Cardholder.id if table == "cardholders" else Account.id
        top = self.session.scalar(select(func.coalesce(func.max(pk), 0)))
        return list(range(int(top or 0) + 1, int(top or 0) + 1 + n))

    def _bulk(self, model: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if not self.postgres:  # executemany takes Python values for JSON columns
            rows = [_json_columns(model, columns, row) for row in rows]
        bulk_insert(self.session, model, columns, rows)


def _json_columns(model: Any, columns: tuple[str, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    """executemany takes Python values for JSON columns ("{}" written by the COPY path is a dict here)."""
    if model is AuditLog:
        return tuple({} if c == "detail" else v for c, v in zip(columns, row, strict=True))
    return row
