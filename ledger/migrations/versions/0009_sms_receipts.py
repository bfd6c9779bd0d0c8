"""delivery receipts: outbound SMS found by the provider's id

Revision ID: 0009_sms_receipts
Revises: 0008_agreements
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_sms_receipts"
down_revision: str | None = "0008_agreements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbound_sms_provider_id", "outbound_sms", ["provider_id"])


def downgrade() -> None:
    op.drop_index("ix_outbound_sms_provider_id", table_name="outbound_sms")
