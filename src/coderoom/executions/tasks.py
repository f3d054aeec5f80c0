"""Queue jobs of the executions domain, as SAQ functions: `executions.run` and the reconciler.

A job carries the execution id and the correlation id of the request that accepted it. The
heartbeat task touches the SAQ job while the sandbox runs; if the worker dies, the heartbeat
stops, SAQ's sweeper notices and retries the job elsewhere, and the retry may take over the
row that the dead worker left `running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from saq import Queue
from saq.types import Context
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.executions import repository
from coderoom.executions.jobs import MAX_ATTEMPTS, run_execution
from coderoom.infra.db import session_scope

log = structlog.get_logger(__name__)

RUN_JOB = "executions.run"
# A run cannot take longer than compile (30 s) + run (30 s) + set-up; past this the job is
# stuck whatever its heartbeat says.
JOB_TIMEOUT_SECONDS = 120


async def run(ctx: Context, *, execution_id: str, correlation_id: str | None = None) -> str:
    extra = cast(dict[str, Any], ctx)
    job = ctx["job"]
    heartbeat = extra["heartbeat_seconds"]

    async def beat() -> None:
        while True:
            await asyncio.sleep(max(heartbeat / 3, 0.2))
            with contextlib.suppress(Exception):
                await job.update()

    beating = asyncio.create_task(beat())
    try:
        await run_execution(
            extra["sessionmaker"],
            extra["engine"],
            uuid.UUID(execution_id),
            retry=job.attempts > 1,
            correlation_id=correlation_id,
        )
    finally:
        beating.cancel()
    return execution_id


run.__qualname__ = RUN_JOB  # SAQ registers functions by this name


async def enqueue(
    queue: Queue, execution_id: uuid.UUID, *, correlation_id: str | None, heartbeat: int
) -> None:
    await queue.enqueue(
        RUN_JOB,
        key=str(execution_id),
        execution_id=str(execution_id),
        correlation_id=correlation_id,
        timeout=JOB_TIMEOUT_SECONDS,
        heartbeat=heartbeat,
        retries=MAX_ATTEMPTS + 1,  # the last attempt only records the failure
        ttl=3600,
    )


async def reconcile(
    queue: Queue,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    heartbeat: int,
    grace_seconds: float = 5.0,
) -> int:
    """Make the database and the queue agree; returns how many executions were re-queued.

    Redis may lose jobs (restarted without persistence, failed over). Every execution that
    the database says is queued is enqueued again (a no-op when the queue has it), and one
    left running past the longest possible run, with no live job, is re-queued or failed.
    """
    now = datetime.now(UTC)
    async with session_scope(sessionmaker) as db:
        queued = await repository.waiting(db, older_than=now - timedelta(seconds=grace_seconds))
        stale = await repository.stale_running(
            db, started_before=now - timedelta(seconds=JOB_TIMEOUT_SECONDS + 30)
        )
    revived = 0
    for execution_id in stale:
        job = await queue.job(str(execution_id))
        if job is not None and job.status in ("active", "queued"):
            continue
        async with session_scope(sessionmaker) as db:
            if await repository.revive(db, execution_id, max_attempts=MAX_ATTEMPTS, now=now):
                queued.append(execution_id)
    for execution_id in queued:
        job = await queue.job(str(execution_id))
        if job is None or job.status not in ("active", "queued"):
            await enqueue(queue, execution_id, correlation_id=None, heartbeat=heartbeat)
            revived += 1
    if revived:
        log.warning("executions.reconciled", requeued=revived)
    return revived
