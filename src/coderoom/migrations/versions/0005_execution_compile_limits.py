"""executions.compile_limits: the compile-phase limits a request chose

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null for interpreted languages and for rows written before this revision (the job
    # then uses the language's default compile limits).
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("compile_limits", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("compile_limits")
