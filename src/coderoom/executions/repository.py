"""Queries of the executions domain. State changes are conditional UPDATEs, so a cancel and
a finishing run can race without either overwriting the other."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.core.pagination import Cursor
from coderoom.executions.models import Execution
from coderoom.executions.status import ACTIVE, ExecutionStatus
from coderoom.infra.orm import newest_first

QUEUED, RUNNING = ExecutionStatus.QUEUED, ExecutionStatus.RUNNING


async def get(db: AsyncSession, execution_id: uuid.UUID) -> Execution | None:
    return await db.get(Execution, execution_id)


async def lock_admissions(db: AsyncSession, user_id: uuid.UUID) -> None:
    """Serialise this user's admissions until the transaction ends, so counting their active
    executions and inserting one is atomic (else concurrent requests all see room under the
    cap). PostgreSQL: a transaction-scoped advisory lock on the user. SQLite: every write
    transaction is already serialised (BEGIN IMMEDIATE), nothing to do."""
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"coderoom:admit:{user_id}"},
        )


async def count_active(db: AsyncSession, user_id: uuid.UUID) -> int:
    result = await db.execute(
        select(func.count())
        .select_from(Execution)
        .where(Execution.created_by == user_id, Execution.status.in_(sorted(ACTIVE)))
    )
    return int(result.scalar_one())


async def page(
    db: AsyncSession,
    *,
    created_by: uuid.UUID | None,
    session_id: uuid.UUID | None,
    limit: int,
    cursor: Cursor | None,
) -> list[Execution]:
    query = newest_first(
        select(Execution),
        Execution.created_at,
        Execution.id,
        limit=limit,
        after=(cursor.at, cursor.id) if cursor else None,
    )
    if created_by is not None:
        query = query.where(Execution.created_by == created_by)
    if session_id is not None:
        query = query.where(Execution.session_id == session_id)
    return list((await db.execute(query)).scalars())


async def claim(
    db: AsyncSession, execution_id: uuid.UUID, *, now: datetime, retry: bool = False
) -> bool:
    """queued → running, if still queued. The same execution never runs twice at once.

    `retry`: the queue re-delivered the job because the worker running it died; the row it
    left `running` may be taken over.
    """
    allowed = (QUEUED, RUNNING) if retry else (QUEUED,)
    result = await db.execute(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status.in_(allowed))
        .values(status=RUNNING, started_at=now, attempts=Execution.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish(
    db: AsyncSession, execution_id: uuid.UUID, *, values: dict[str, Any], now: datetime
) -> bool:
    """running → a terminal status, unless it was cancelled meanwhile."""
    result = await db.execute(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status == RUNNING)
        .values(**values, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def cancel(db: AsyncSession, execution_id: uuid.UUID, *, now: datetime) -> bool:
    result = await db.execute(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status.in_(sorted(ACTIVE)))
        .values(status=ExecutionStatus.CANCELLED, finished_at=now, error="cancelled by request")
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


#: What a run produced, kept on a row cancelled while it ran (its status stays cancelled).
OUTPUT_FIELDS = (
    "exit_code",
    "signal",
    "stdout",
    "stderr",
    "compile_output",
    "stdout_truncated",
    "stderr_truncated",
    "wall_time_ms",
    "cpu_time_ms",
    "memory_kb",
)


async def keep_output(db: AsyncSession, execution_id: uuid.UUID, *, values: dict[str, Any]) -> bool:
    """cancelled (by request, while it ran) → the same, with the output the run had so far."""
    result = await db.execute(
        update(Execution)
        .where(
            Execution.id == execution_id,
            Execution.status == ExecutionStatus.CANCELLED,
            Execution.started_at.is_not(None),
            Execution.wall_time_ms.is_(None),  # once only
        )
        .values({name: values[name] for name in OUTPUT_FIELDS})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def requeue(db: AsyncSession, execution_ids: list[uuid.UUID]) -> None:
    """running → queued, for runs interrupted by a shutdown: they run again at the next start."""
    if execution_ids:
        await db.execute(
            update(Execution)
            .where(Execution.id.in_(execution_ids), Execution.status == RUNNING)
            .values(status=QUEUED, started_at=None)
            .execution_options(synchronize_session=False)
        )


async def recover(db: AsyncSession, *, max_attempts: int, now: datetime) -> list[uuid.UUID]:
    """After a crash: retry interrupted runs up to `max_attempts`, fail the rest; return
    every execution waiting to run, oldest first."""
    await db.execute(
        update(Execution)
        .where(Execution.status == RUNNING, Execution.attempts >= max_attempts)
        .values(
            status=ExecutionStatus.INTERNAL_ERROR,
            finished_at=now,
            error=f"the service stopped during this execution {max_attempts} times; not retried",
        )
        .execution_options(synchronize_session=False)
    )
    await db.execute(
        update(Execution)
        .where(Execution.status == RUNNING)
        .values(status=QUEUED, started_at=None)
        .execution_options(synchronize_session=False)
    )
    result = await db.execute(
        select(Execution.id).where(Execution.status == QUEUED).order_by(Execution.created_at)
    )
    return list(result.scalars())


async def waiting(db: AsyncSession, *, older_than: datetime) -> list[uuid.UUID]:
    result = await db.execute(
        select(Execution.id)
        .where(Execution.status == QUEUED, Execution.created_at < older_than)
        .order_by(Execution.created_at)
    )
    return list(result.scalars())


async def stale_running(db: AsyncSession, *, started_before: datetime) -> list[uuid.UUID]:
    result = await db.execute(
        select(Execution.id).where(
            Execution.status == RUNNING, Execution.started_at < started_before
        )
    )
    return list(result.scalars())


async def revive(
    db: AsyncSession, execution_id: uuid.UUID, *, max_attempts: int, now: datetime
) -> bool:
    """A run nobody is doing any more: back to queued, or internal_error past the cap."""
    failed = await db.execute(
        update(Execution)
        .where(
            Execution.id == execution_id,
            Execution.status == RUNNING,
            Execution.attempts >= max_attempts,
        )
        .values(
            status=ExecutionStatus.INTERNAL_ERROR,
            finished_at=now,
            error="lost by its worker; not retried",
        )
        .execution_options(synchronize_session=False)
    )
    if failed.rowcount:  # type: ignore[attr-defined]
        return False
    requeued = await db.execute(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status == RUNNING)
        .values(status=QUEUED, started_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(requeued.rowcount)  # type: ignore[attr-defined]
