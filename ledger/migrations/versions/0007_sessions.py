"""web chat sessions, agent roles and revocable agent tokens, idle verification

Revision ID: 0007_sessions
Revises: 0006_wechat
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_sessions"
down_revision: str | None = "0006_wechat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("conversation_pk", sa.Integer(), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("link_attempt_pk", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_chat_sessions_conversation_pk", "chat_sessions", ["conversation_pk"])
    op.create_table(
        "agent_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("jti"),
    )
    op.create_index("ix_agent_tokens_username", "agent_tokens", ["username"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("last_holder_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("role", sa.String(length=16), nullable=False, server_default="agent"))
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("role")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("last_holder_at")
    op.drop_index("ix_agent_tokens_username", table_name="agent_tokens")
    op.drop_table("agent_tokens")
    op.drop_index("ix_chat_sessions_conversation_pk", table_name="chat_sessions")
    op.drop_table("chat_sessions")
