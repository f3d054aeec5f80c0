"""A migration that creates a table and then fails: the table must not survive.

Revision ID: 0099
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "0005"  # the head: re-chain when revisions are added
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO half_done (id) VALUES (1)")
    raise RuntimeError("migration failed halfway")


def downgrade() -> None:
    op.drop_table("half_done")
