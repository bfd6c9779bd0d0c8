"""agreements over their life: plan row status and payments, carried amounts, promise baseline, EOD runs

Revision ID: 0008_agreements
Revises: 0007_sessions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_agreements"
down_revision: str | None = "0007_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("fee_base", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("carried_interest", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("carried_fees", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("paid_before", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ended_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("notice", sa.String(length=24), nullable=True))
    # Plans written before this revision charged their fee on everything owed.
    op.execute("UPDATE plans SET fee_base = principal")
    with op.batch_alter_table("plan_rows") as batch:
        batch.add_column(sa.Column("fee", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("status", sa.String(length=8), nullable=False, server_default="due"))
        batch.add_column(sa.Column("paid", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("promises") as batch:
        batch.add_column(sa.Column("paid_before", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "eod_runs",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("business_date"),
    )
    op.create_index("ix_plans_status", "plans", ["status"])
    op.create_index("ix_promises_status", "promises", ["status"])


def downgrade() -> None:
    op.drop_index("ix_promises_status", "promises")
    op.drop_index("ix_plans_status", "plans")
    op.drop_table("eod_runs")
    with op.batch_alter_table("promises") as batch:
        batch.drop_column("paid_before")
    with op.batch_alter_table("plan_rows") as batch:
        for name in ("paid", "status", "fee"):
            batch.drop_column(name)
    with op.batch_alter_table("plans") as batch:
        for name in ("notice", "ended_on", "paid_before", "carried_fees", "carried_interest", "fee_base"):
            batch.drop_column(name)
