"""Queries of the sessions domain. Flushes, never commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.core.pagination import Cursor
from coderoom.infra.orm import newest_first
from coderoom.sessions.models import CodingSession, Invite, Participant


async def get(db: AsyncSession, session_id: uuid.UUID) -> CodingSession | None:
    return await db.get(CodingSession, session_id)


async def add_participant(
    db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID, *, role: str, now: datetime
) -> bool:
    """Insert the participant unless they already are one; True if this call added them.

    One statement (INSERT … ON CONFLICT DO NOTHING), so two joins of one user racing each
    other cannot both insert: the second waits for the first and then does nothing."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Participant)
        .values(session_id=session_id, user_id=user_id, role=role, joined_at=now)
        .on_conflict_do_nothing(index_elements=["session_id", "user_id"])
    )
    result = await db.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_participant(
    db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID
) -> Participant | None:
    return await db.get(Participant, (session_id, user_id))


async def participants(db: AsyncSession, session_ids: list[uuid.UUID]) -> list[Participant]:
    if not session_ids:
        return []
    result = await db.execute(
        select(Participant)
        .where(Participant.session_id.in_(session_ids))
        .order_by(Participant.joined_at, Participant.user_id)
    )
    return list(result.scalars())


async def list_for_user(
    db: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: Cursor | None
) -> list[CodingSession]:
    query = newest_first(
        select(CodingSession)
        .join(Participant, Participant.session_id == CodingSession.id)
        .where(Participant.user_id == user_id),
        CodingSession.last_activity_at,
        CodingSession.id,
        limit=limit,
        after=(cursor.at, cursor.id) if cursor else None,
    )
    return list((await db.execute(query)).scalars())


async def update_fields(
    db: AsyncSession,
    session_id: uuid.UUID,
    *,
    values: dict[str, object],
    bump_version: bool,
    base_version: int | None,
    now: datetime,
) -> bool:
    """One conditional UPDATE: the version check and the write cannot be interleaved."""
    statement = update(CodingSession).where(CodingSession.id == session_id)
    if base_version is not None:
        statement = statement.where(CodingSession.version == base_version)
    changes: dict[str, object] = {**values, "updated_at": now, "last_activity_at": now}
    if bump_version:
        changes["version"] = CodingSession.version + 1
    result = await db.execute(
        statement.values(**changes).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def touch(db: AsyncSession, session_id: uuid.UUID, *, now: datetime) -> None:
    await db.execute(
        update(CodingSession)
        .where(CodingSession.id == session_id)
        .values(last_activity_at=now)
        .execution_options(synchronize_session=False)
    )


async def set_columns(db: AsyncSession, session_id: uuid.UUID, values: dict[str, object]) -> None:
    await db.execute(
        update(CodingSession)
        .where(CodingSession.id == session_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def get_invite(db: AsyncSession, invite_id: uuid.UUID) -> Invite | None:
    return await db.get(Invite, invite_id)


async def get_invite_by_hash(db: AsyncSession, token_hash: str) -> Invite | None:
    result = await db.execute(select(Invite).where(Invite.token_hash == token_hash))
    return result.scalar_one_or_none()


async def list_invites(db: AsyncSession, session_id: uuid.UUID) -> list[Invite]:
    result = await db.execute(
        select(Invite).where(Invite.session_id == session_id).order_by(Invite.created_at.desc())
    )
    return list(result.scalars())


async def consume_invite(db: AsyncSession, invite_id: uuid.UUID, *, now: datetime) -> bool:
    """Count one use if the invite is still live, atomically (max_uses cannot be overrun)."""
    result = await db.execute(
        update(Invite)
        .where(
            Invite.id == invite_id,
            Invite.revoked_at.is_(None),
            or_(Invite.expires_at.is_(None), Invite.expires_at > now),
            or_(Invite.max_uses.is_(None), Invite.uses < Invite.max_uses),
        )
        .values(uses=Invite.uses + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def remove_participant(db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    result = await db.execute(
        delete(Participant)
        .where(Participant.session_id == session_id, Participant.user_id == user_id)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_participants(db: AsyncSession, session_id: uuid.UUID) -> int:
    result = await db.execute(
        select(func.count()).select_from(Participant).where(Participant.session_id == session_id)
    )
    return int(result.scalar_one())
