"""Queries of the auth domain. Flushes, never commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth.models import ApiKey, RefreshToken, SignupInvite, User
from coderoom.infra.orm import newest_first


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


async def revoke_user_tokens(db: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    """Every refresh token of the user, whatever its family: a disabled account's logins end."""
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def set_disabled(
    db: AsyncSession, user_id: uuid.UUID, *, disabled_at: datetime | None
) -> bool:
    result = await db.execute(
        update(User)
        .where(User.id == user_id)
        .values(disabled_at=disabled_at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def page_users(
    db: AsyncSession, *, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[User]:
    query = newest_first(select(User), User.created_at, User.id, limit=limit, after=after)
    return list((await db.execute(query)).scalars())


async def live_api_key(db: AsyncSession, key_hash: str, *, now: datetime) -> ApiKey | None:
    """The key with this hash if it is neither revoked nor expired."""
    result = await db.execute(
        select(ApiKey).where(
            ApiKey.key_hash == key_hash,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        )
    )
    return result.scalar_one_or_none()


async def api_keys_of(db: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    result = await db.execute(
        select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
    )
    return list(result.scalars())


async def revoke_api_key(
    db: AsyncSession, key_id: uuid.UUID, *, user_id: uuid.UUID, now: datetime
) -> bool:
    """Revoke one of the user's keys; False when it is not theirs or does not exist."""
    result = await db.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id)
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def consume_signup_invite(
    db: AsyncSession, token_hash: str, *, email: str, user_id: uuid.UUID, now: datetime
) -> bool:
    """Spend a live invite meant for anyone or for `email`, atomically: one account each."""
    result = await db.execute(
        update(SignupInvite)
        .where(
            SignupInvite.token_hash == token_hash,
            SignupInvite.used_at.is_(None),
            SignupInvite.revoked_at.is_(None),
            or_(SignupInvite.expires_at.is_(None), SignupInvite.expires_at > now),
            or_(SignupInvite.email.is_(None), SignupInvite.email == email),
        )
        .values(used_at=now, used_by=user_id)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def live_signup_invite(
    db: AsyncSession, token_hash: str, *, email: str, now: datetime
) -> SignupInvite | None:
    result = await db.execute(
        select(SignupInvite).where(
            SignupInvite.token_hash == token_hash,
            SignupInvite.used_at.is_(None),
            SignupInvite.revoked_at.is_(None),
            or_(SignupInvite.expires_at.is_(None), SignupInvite.expires_at > now),
            or_(SignupInvite.email.is_(None), SignupInvite.email == email),
        )
    )
    return result.scalar_one_or_none()


async def signup_invites(db: AsyncSession) -> list[SignupInvite]:
    result = await db.execute(select(SignupInvite).order_by(SignupInvite.created_at.desc()))
    return list(result.scalars())


async def revoke_signup_invite(db: AsyncSession, invite_id: uuid.UUID, *, now: datetime) -> bool:
    result = await db.execute(
        update(SignupInvite)
        .where(SignupInvite.id == invite_id, SignupInvite.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0):
        return True
    return await db.get(SignupInvite, invite_id) is not None
