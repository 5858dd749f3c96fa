"""api tokens: one per user and purpose, stored as a SHA-256 hash (revision 0003_api_tokens, revises 0001)"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_api_tokens"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "apitoken",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["crm_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_apitoken_company_id"), "apitoken", ["company_id"], unique=False)
    op.create_index(op.f("ix_apitoken_user_id"), "apitoken", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_apitoken_user_id"), table_name="apitoken")
    op.drop_index(op.f("ix_apitoken_company_id"), table_name="apitoken")
    op.drop_table("apitoken")
