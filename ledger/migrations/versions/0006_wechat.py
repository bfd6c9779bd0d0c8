"""wechat: followers, bindings to holders, pushes seen once, messages sent

Revision ID: 0006_wechat
Revises: 0005_contact_rules
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0006_wechat"
down_revision: str | None = "0005_contact_rules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("last_interaction_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminders_opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("openid"),
    )
    op.create_table(
        "wechat_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("cardholder_id", sa.Integer(), nullable=False),
        sa.Column("account_pk", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["account_pk"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["cardholder_id"], ["cardholders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_wechat_bindings_openid", "wechat_bindings", ["openid"])
    op.create_index("ix_wechat_bindings_cardholder_id", "wechat_bindings", ["cardholder_id"])
    op.create_table(
        "wechat_pushes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_wechat_pushes_openid", "wechat_pushes", ["openid"])
    op.create_table(
        "wechat_outbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=128), nullable=True),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_wechat_outbound_openid", "wechat_outbound", ["openid"])


def downgrade() -> None:
    op.drop_index("ix_wechat_outbound_openid", table_name="wechat_outbound")
    op.drop_table("wechat_outbound")
    op.drop_index("ix_wechat_pushes_openid", table_name="wechat_pushes")
    op.drop_table("wechat_pushes")
    op.drop_index("ix_wechat_bindings_cardholder_id", table_name="wechat_bindings")
    op.drop_index("ix_wechat_bindings_openid", table_name="wechat_bindings")
    op.drop_table("wechat_bindings")
    op.drop_table("wechat_users")
