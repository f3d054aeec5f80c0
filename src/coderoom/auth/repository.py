"""Queries of the auth domain. Flushes, never commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth.models import RefreshToken, User


async def get_user(db: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await db.get(User, user_id)


async def get_user_by_email(db: AsyncSession, email: str) -> User | None:
    result = await db.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def get_users(db: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not user_ids:
        return {}
    result = await db.execute(select(User).where(User.id.in_(user_ids)))
    return {user.id: user for user in result.scalars()}


async def claim_refresh_token(
    db: AsyncSession, token_hash: str, *, now: datetime
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """Mark a live token used, atomically; (user_id, family_id) if this call won it.

    A conditional UPDATE decides, so two concurrent refreshes with the same token cannot
    both succeed: the database serialises them and the second finds it used.
    """
    result = await db.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(RefreshToken.user_id, RefreshToken.family_id)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    return (row[0], row[1]) if row else None


async def get_refresh_token(db: AsyncSession, token_hash: str) -> RefreshToken | None:
    result = await db.execute(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    return result.scalar_one_or_none()


async def revoke_family(db: AsyncSession, family_id: uuid.UUID, *, now: datetime) -> None:
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
