"""pseudonym vaults; model version and prompt-cache usage on results

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vaults",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("job_id"),
    )
    with op.batch_alter_table("vaults", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vaults_tenant"), ["tenant"], unique=False)
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("prompt_cache_hit_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prompt_cache_miss_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("from_cache", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_column("from_cache")
        batch_op.drop_column("prompt_cache_miss_tokens")
        batch_op.drop_column("prompt_cache_hit_tokens")
        batch_op.drop_column("model_version")
    with op.batch_alter_table("vaults", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vaults_tenant"))
    op.drop_table("vaults")
