"""durable revocations: ended sessions and spent refresh tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 17:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_token_families",
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("family", name=op.f("pk_revoked_token_families")),
    )
    op.create_index(
        op.f("ix_revoked_token_families_expires_at"),
        "revoked_token_families",
        ["expires_at"],
    )
    op.create_table(
        "spent_refresh_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_spent_refresh_tokens")),
    )
    op.create_index(
        op.f("ix_spent_refresh_tokens_expires_at"), "spent_refresh_tokens", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_spent_refresh_tokens_expires_at"), table_name="spent_refresh_tokens")
    op.drop_table("spent_refresh_tokens")
    op.drop_index(op.f("ix_revoked_token_families_expires_at"), table_name="revoked_token_families")
    op.drop_table("revoked_token_families")
