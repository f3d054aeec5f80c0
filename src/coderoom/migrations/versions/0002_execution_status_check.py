"""constrain executions.status to the execution status enum

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 16:00:00

A status the code does not know used to be storable and then failed validation when read
(a 500 on every list that contained the row). The CHECK makes the database refuse it.
The list is frozen here on purpose: a later member is added by a later revision.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "compile_error",
    "timed_out",
    "memory_exceeded",
    "output_exceeded",
    "internal_error",
    "cancelled",
)


def upgrade() -> None:
    allowed = ", ".join(f"'{status}'" for status in STATUSES)
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_executions_status"), f"status IN ({allowed})")


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_executions_status"), type_="check")
