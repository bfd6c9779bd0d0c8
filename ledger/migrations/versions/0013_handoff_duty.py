"""handoff duty: agents' team and presence; tickets parked or not, claimed, ended, timed out, callback

Revision ID: 0013_handoff_duty
Revises: 0009_sms_receipts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_handoff_duty"
down_revision: str | None = "0012_who_is_speaking"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("team", sa.String(32), nullable=False, server_default="collections"))
        batch.add_column(sa.Column("presence", sa.String(16), nullable=False, server_default="away"))
        batch.add_column(sa.Column("presence_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("handoff_tickets") as batch:
        batch.add_column(sa.Column("parked", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("timed_out_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("callback_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoff_tickets") as batch:
        for column in ("callback_at", "timed_out_at", "ended_at", "claimed_at", "parked"):
            batch.drop_column(column)
    with op.batch_alter_table("agents") as batch:
        for column in ("presence_at", "presence", "team"):
            batch.drop_column(column)
