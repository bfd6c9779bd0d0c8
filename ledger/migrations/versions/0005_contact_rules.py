"""contact rules per person: who asked for a preference, number suppressions, requests from
people not verified, hardship pauses, and contact attempts counted per phone

Revision ID: 0005_contact_rules
Revises: 0004
Create Date: 2026-11-30 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_contact_rules"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_preferences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("asked_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=True))

    with op.batch_alter_table("contact_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=12), nullable=False, server_default="campaign"))
        batch_op.add_column(sa.Column("to_phone", sa.String(length=11), nullable=True))
        batch_op.add_column(sa.Column("selected_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("account_pk", existing_type=sa.Integer(), nullable=True)
        batch_op.create_index("ix_attempt_phone_time", ["to_phone", "scheduled_at"], unique=False)
    # Attempts made before this migration are counted against their holder's number.
    op.execute(
        "UPDATE contact_attempts SET to_phone = (SELECT cardholders.phone FROM accounts JOIN cardholders"
        " ON cardholders.id = accounts.cardholder_id WHERE accounts.id = contact_attempts.account_pk)"
    )

    op.create_table(
        "number_suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("account_pk", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("asked_by", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_pk"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_number_suppressions_phone", "number_suppressions", ["phone"], unique=False)

    op.create_table(
        "contact_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )

    op.create_table(
        "hardships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_pk", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pause_until", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["account_pk"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hardships_account_pk", "hardships", ["account_pk"], unique=False)
    op.create_index("ix_hardships_phone", "hardships", ["phone"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_hardships_phone", table_name="hardships")
    op.drop_index("ix_hardships_account_pk", table_name="hardships")
    op.drop_table("hardships")
    op.drop_table("contact_requests")
    op.drop_index("ix_number_suppressions_phone", table_name="number_suppressions")
    op.drop_table("number_suppressions")
    with op.batch_alter_table("contact_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempt_phone_time")
        batch_op.alter_column("account_pk", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("selected_at")
        batch_op.drop_column("to_phone")
        batch_op.drop_column("purpose")
    with op.batch_alter_table("contact_preferences", schema=None) as batch_op:
        batch_op.drop_column("source")
        batch_op.drop_column("asked_by")
