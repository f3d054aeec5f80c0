"""A migration that creates a table and then fails: the table must not survive.

Revision ID: 0099
Revises: the newest revision of the package (read below, so it stays on top of any chain)
"""

import sqlalchemy as sa
from alembic import op
from alembic.script import ScriptDirectory

from coderoom.migrations import MIGRATIONS_DIR

revision = "0099"
down_revision = ScriptDirectory(
    str(MIGRATIONS_DIR), version_locations=[str(MIGRATIONS_DIR / "versions")]
).get_current_head()
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO half_done (id) VALUES (1)")
    raise RuntimeError("migration failed halfway")


def downgrade() -> None:
    op.drop_table("half_done")
