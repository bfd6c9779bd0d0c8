"""voice: calls (state between webhook turns, outcome) and the outcome of a call attempt

Revision ID: 0014_voice
Revises: 0013_handoff_duty
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_voice"
down_revision: str | None = "0013_handoff_duty"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_attempts") as batch:
        batch.add_column(sa.Column("outcome", sa.String(16), nullable=True))
    op.create_table(
        "voice_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_sid", sa.String(64), nullable=False, unique=True),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("phone", sa.String(11), nullable=True, index=True),
        sa.Column("conversation_id", sa.String(64), nullable=True),
        sa.Column("attempt_pk", sa.Integer(), sa.ForeignKey("contact_attempts.id"), nullable=True),
        sa.Column("account_pk", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answered_by", sa.String(24), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("silences", sa.Integer(), nullable=False),
        sa.Column("expecting", sa.String(16), nullable=True),
        sa.Column("menu", sa.JSON(), nullable=True),
        sa.Column("last_twiml", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("voice_calls")
    with op.batch_alter_table("contact_attempts") as batch:
        batch.drop_column("outcome")
