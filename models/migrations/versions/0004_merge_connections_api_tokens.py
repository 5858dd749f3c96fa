"""Merge the two branches of the schema: integration connections and API tokens.

Revision ID: 0004_merge
Revises: 0002_connections, 0003_api_tokens
"""

from collections.abc import Sequence

revision: str = "0004_merge"
down_revision: str | Sequence[str] | None = ("0002_connections", "0003_api_tokens")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
