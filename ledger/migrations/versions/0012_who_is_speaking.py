"""who is speaking: a conversation's proven phone and its speaker; contact preferences with their scope

Revision ID: 0012_who_is_speaking
Revises: 0009_sms_receipts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_who_is_speaking"
down_revision: str | None = "0011_interest_start"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_proven", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("speaker", sa.String(length=16), nullable=True))
    with op.batch_alter_table("contact_preferences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rules", sa.JSON(), nullable=True))
    # The phones conversations already hold from their channel: an SMS sender's, a link's number.
    conversations = sa.table(
        "conversations",
        sa.column("phone_proven", sa.Boolean()),
        sa.column("channel", sa.String()),
        sa.column("conversation_id", sa.String()),
        sa.column("claimed_phone", sa.String()),
    )
    op.execute(
        conversations.update()
        .where(
            conversations.c.claimed_phone.is_not(None),
            sa.or_(conversations.c.channel == "sms", conversations.c.conversation_id.like("lnk-%")),
        )
        .values(phone_proven=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("contact_preferences", schema=None) as batch_op:
        batch_op.drop_column("rules")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("speaker")
        batch_op.drop_column("phone_proven")
