"""published resources and search tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "published_resources",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed_body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "tenant", "resource_type", "resource_id", name="uq_published_logical_id"
        ),
    )
    with op.batch_alter_table("published_resources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_published_resources_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_published_resources_last_updated"), ["last_updated"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_published_resources_tenant"), ["tenant"], unique=False)

    op.create_table(
        "search_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("published_id", sa.String(length=36), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["published_id"],
            ["published_resources.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("search_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_search_tokens_published_id"), ["published_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_search_tokens_token"), ["token"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("search_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_tokens_token"))
        batch_op.drop_index(batch_op.f("ix_search_tokens_published_id"))

    op.drop_table("search_tokens")
    with op.batch_alter_table("published_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_published_resources_tenant"))
        batch_op.drop_index(batch_op.f("ix_published_resources_last_updated"))
        batch_op.drop_index(batch_op.f("ix_published_resources_job_id"))

    op.drop_table("published_resources")
