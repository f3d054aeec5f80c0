"""users.email, signup_invites.email: re-fold stored addresses to NFKC_Casefold

Addresses used to be stored lower-cased only; they are now compared as NFKC_Casefold
(auth/emails.py). Rows whose folded form differs are rewritten, so sign-in with any width
or case finds them. If two existing accounts fold to the same address, neither is changed
and the migration logs which: an operator must decide (rename one with the SQL it prints);
the unique index keeps a third from appearing.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-04 17:30:00
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _fold(text: str) -> str:
    # Frozen copy of auth/emails.py fold(): a migration must not change when the app does.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def upgrade() -> None:
    bind = op.get_bind()
    users = list(bind.execute(sa.text("SELECT id, email FROM users")))
    taken: dict[str, list[str]] = {}
    for _, email in users:
        taken.setdefault(_fold(email), []).append(email)
    for user_id, email in users:
        folded = _fold(email)
        if folded == email:
            continue
        if len(taken[folded]) > 1:
            log.warning(
                "0008: not re-folding %r (user %s): accounts %r fold to the same address %r; "
                "change the email of all but one",
                email,
                user_id,
                taken[folded],
                folded,
            )
            continue
        bind.execute(
            sa.text("UPDATE users SET email = :email WHERE id = :id"),
            {"email": folded, "id": user_id},
        )
    invites = bind.execute(sa.text("SELECT id, email FROM signup_invites WHERE email IS NOT NULL"))
    for invite_id, email in list(invites):
        if _fold(email) != email:
            bind.execute(
                sa.text("UPDATE signup_invites SET email = :email WHERE id = :id"),
                {"email": _fold(email), "id": invite_id},
            )


def downgrade() -> None:
    # Folding cannot be undone (the original width and case are gone) and needs no undoing:
    # the older code lower-cases what it compares, and folded addresses are lower-case.
    pass
