"""statements.interest_start: the first posting date of a statement's charges (interest runs from it)

Revision ID: 0011_interest_start
Revises: 0009_sms_receipts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_interest_start"
down_revision: str | None = "0010_trust_second_pass"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("statements") as batch:
        batch.add_column(sa.Column("interest_start", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("statements") as batch:
        batch.drop_column("interest_start")
