"""The queue's side of executions, as SAQ functions: the job `executions.run` and the
reconciler that keeps the queue and the database in agreement.

A job carries the execution id and the correlation id of the request that accepted it; it
runs the execution through the same runner as the embedded pool (`runner.py`). The
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
from saq.job import Status as JobStatus
from saq.types import Context
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.executions import repository, runner
from coderoom.infra.db import session_scope

log = structlog.get_logger(__name__)

RUN_JOB = "executions.run"
# A run cannot take longer than compile (30 s) + run (30 s) + set-up; past this the job is
# stuck whatever its heartbeat says.
JOB_TIMEOUT_SECONDS = 120
#: SAQ counts the first try among its retries; the attempt past MAX_ATTEMPTS only records
#: the failure (see runner._claim).
JOB_TRIES = runner.MAX_ATTEMPTS + 1
#: Job states in which somebody is (or soon will be) running the execution.
ALIVE = frozenset({JobStatus.NEW, JobStatus.QUEUED, JobStatus.ACTIVE})


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
        await runner.run_execution(
            extra["sessionmaker"],
            extra["engine"],
            uuid.UUID(execution_id),
            retry=job.attempts > 1,
            correlation_id=correlation_id,
            live=extra.get("live"),
        )
    finally:
        beating.cancel()
    return execution_id


run.__qualname__ = RUN_JOB  # SAQ registers functions by this name


async def enqueue(
    queue: Queue, execution_id: uuid.UUID, *, correlation_id: str | None, heartbeat: int
) -> bool:
    """Queue the job for an execution; False when the queue already holds a live one."""
    job = await queue.enqueue(
        RUN_JOB,
        key=str(execution_id),
        execution_id=str(execution_id),
        correlation_id=correlation_id,
        timeout=JOB_TIMEOUT_SECONDS,
        heartbeat=heartbeat,
        retries=JOB_TRIES,
        ttl=3600,
    )
    return job is not None


async def reconcile(
    queue: Queue,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    heartbeat: int,
    stale_after: float,
    grace_seconds: float = 5.0,
) -> int:
    """Make the database and the queue agree; returns how many executions were re-queued.

    Redis may lose jobs (restarted without persistence, failed over), and a job may end
    without its row (the worker lost the database, then gave up). Every execution that the
    database says is queued is enqueued again (a no-op when the queue holds it), and one
    left running for `stale_after` seconds with no live job is re-queued, or failed past
    the retry cap. With `stale_after` = heartbeat + sweep, a run nobody is doing any more is
    found as fast as SAQ finds a dead worker.
    """
    now = datetime.now(UTC)
    async with session_scope(sessionmaker) as db:
        queued = await repository.waiting(db, older_than=now - timedelta(seconds=grace_seconds))
        running = await repository.stale_running(
            db, started_before=now - timedelta(seconds=stale_after)
        )
    revived = 0
    for execution_id in running:
        job = await queue.job(str(execution_id))
        if job is not None and job.status in ALIVE:
            continue
        async with session_scope(sessionmaker) as db:
            if await repository.revive(db, execution_id, max_attempts=runner.MAX_ATTEMPTS, now=now):
                queued.append(execution_id)
    for execution_id in queued:
        job = await queue.job(str(execution_id))
        if (job is None or job.status not in ALIVE) and await enqueue(
            queue, execution_id, correlation_id=None, heartbeat=heartbeat
        ):
            revived += 1
    if revived:
        log.warning("executions.reconciled", requeued=revived)
    return revived
