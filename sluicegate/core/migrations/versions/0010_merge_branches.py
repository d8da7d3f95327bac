"""merge the vault/usage, HL7 context, finance idempotency and security branches

Revision ID: 0010
Revises: 0005, 0007, 0008, 0009
Create Date: 2026-11-28

Four features grew their tables in parallel from 0004; this joins them into
one head again, so the next migration has a single parent. No schema change.
"""

from collections.abc import Sequence

revision: str = "0010"
down_revision: str | Sequence[str] | None = ("0005", "0007", "0008", "0009")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
