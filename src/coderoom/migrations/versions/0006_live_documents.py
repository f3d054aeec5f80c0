"""live_updates: the durable update log of each session's live (Yjs) document

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing sessions have no rows: their document is seeded from `sessions.source` the
    # first time it is read (live/document.py `seed`, deterministic so two instances agree).
    op.create_table(
        "live_updates",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "session_id",
            sa.Uuid(),
            sa.ForeignKey(
                "sessions.id",
                ondelete="CASCADE",
                name="fk_live_updates_session_id_sessions",
            ),
            nullable=False,
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("snapshot", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_live_updates"),
    )
    op.create_index("ix_live_updates_session_id_id", "live_updates", ["session_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_live_updates_session_id_id", table_name="live_updates")
    op.drop_table("live_updates")
