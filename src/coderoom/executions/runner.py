"""The execution runner: claim an execution, run it in the sandbox, store the verdict.

Both backends run executions through `run_execution` (the embedded pool directly, queue
workers from the SAQ job `executions.run` in `tasks.py`). It owns its units of work (the
service functions only flush): at most one to claim the row (queued → running; skipped when
the request inserted it already claimed), none while the program runs, one to store the
verdict.

The database may go away at any of these points. The runner then backs off and retries
(`DATABASE_BACKOFF`) instead of failing: a claim is retried until it goes through, and a
verdict already computed is kept and stored as soon as the database is back, so a short
outage delays executions but neither fails them nor leaves them `running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.executions import repository, service
from coderoom.executions.live import LiveRuns, RunPublisher
from coderoom.executions.status import TERMINAL, ExecutionStatus
from coderoom.infra import metrics
from coderoom.infra import sentry as monitoring
from coderoom.infra.db import DatabaseUnavailable, session_scope
from coderoom.sandbox import Engine, ProgramError, Result, RunControl
from coderoom.sandbox import Status as Verdict

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: How many times an execution may be started in all (a start whose process died counts).
#: The one definition of the retry cap: recovery, the reconciler and the queue's own
#: retry count all derive from it.
MAX_ATTEMPTS = 2


@dataclass(frozen=True)
class Claimed:
    correlation_id: str
    spec: service.RunSpec
    session_id: uuid.UUID | None
    created_by: uuid.UUID


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with full jitter, capped, for as long as `give_up_after`."""

    first: float = 0.1
    cap: float = 2.0
    give_up_after: float = 120.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.first * 2**attempt))  # noqa: S311


DATABASE_BACKOFF = Backoff()


async def with_database(
    what: str, step: Callable[[], Awaitable[T]], backoff: Backoff = DATABASE_BACKOFF
) -> T:
    """Run one unit of work, retrying while the database is unavailable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + backoff.give_up_after
    attempt = 0
    while True:
        try:
            return await step()
        except DatabaseUnavailable:
            if loop.time() >= deadline:
                raise
            delay = backoff.delay(attempt)
            if attempt == 0:
                log.warning("execution.database_unavailable", step=what, retrying=True)
            attempt += 1
            await asyncio.sleep(delay)


async def _claim(
    sessionmaker: async_sessionmaker[AsyncSession],
    execution_id: uuid.UUID,
    *,
    retry: bool,
    claimed: bool,
) -> Claimed | None:
    """Take the row (unless the request already did) and read what to run."""
    async with session_scope(sessionmaker) as db:
        now = datetime.now(UTC)
        if not claimed and not await repository.claim(db, execution_id, now=now, retry=retry):
            return None  # cancelled, finished, or running elsewhere: nothing to do
        execution = await repository.get(db, execution_id)
        if execution is None or execution.status is not ExecutionStatus.RUNNING:
            return None
        if not claimed or execution.attempts == 1:  # its first start: it waited until now
            metrics.QUEUE_WAIT.observe(max(0.0, (now - execution.created_at).total_seconds()))
        if execution.attempts > MAX_ATTEMPTS:
            await repository.finish(
                db,
                execution_id,
                values={
                    "status": ExecutionStatus.INTERNAL_ERROR,
                    "error": f"the worker running it stopped {MAX_ATTEMPTS} times; not retried",
                },
                now=now,
            )
            log.error("execution.gave_up", execution_id=str(execution_id))
            return None
        return Claimed(
            execution.correlation_id or "",
            service.run_spec(execution),
            execution.session_id,
            execution.created_by,
        )


async def run_execution(
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: Engine,
    execution_id: uuid.UUID,
    *,
    retry: bool = False,
    claimed: bool = False,
    correlation_id: str | None = None,
    live: LiveRuns | None = None,
) -> None:
    """Run one execution. `retry`: the previous attempt's worker died, take over its row;
    `claimed`: the row was inserted `running` for this process, no claim needed; `live`:
    publish its events as it goes and take commands (stdin, signals, cancel)."""
    taken = await with_database(
        "claim", lambda: _claim(sessionmaker, execution_id, retry=retry, claimed=claimed)
    )
    if taken is None:
        return
    spec = taken.spec
    correlation_id = taken.correlation_id or correlation_id
    with (
        structlog.contextvars.bound_contextvars(
            execution_id=str(execution_id), language=spec.language, correlation_id=correlation_id
        ),
        monitoring.job_scope(
            execution_id=str(execution_id), language=spec.language, correlation_id=correlation_id
        ),
    ):
        log.info("execution.started")
        started = time.perf_counter()
        control = RunControl(interactive=spec.interactive)
        publisher: RunPublisher | None = None
        steering: asyncio.Task[None] | None = None
        if live is not None:
            publisher = live.publisher(
                execution_id, session_id=taken.session_id, created_by=taken.created_by
            )
            steering = asyncio.create_task(live.steer_run(execution_id, control))
        try:
            result = await engine.run(
                spec.language,
                spec.program,
                spec.limits,
                compile_limits=spec.compile_limits,
                observer=publisher,
                control=control,
            )
        except ProgramError as exc:  # unknown language now, or bad stored program
            result = Result(status=Verdict.INTERNAL_ERROR, message=str(exc))
        finally:
            if steering is not None:
                steering.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await steering
        metrics.observe_run(
            spec.language, str(result.status), time.perf_counter() - started, result.wall_time_ms
        )
        if result.status is Verdict.INTERNAL_ERROR:
            log.error("execution.internal_error", message=result.message)
        stored = await with_database("store", lambda: _store(sessionmaker, execution_id, result))
        if publisher is not None:
            final = await with_database("read", lambda: _final(sessionmaker, execution_id))
            if final is not None:
                publisher.finish(final)
        log.info(
            "execution.finished",
            status=str(result.status),
            stored=stored,
            wall_time_ms=result.wall_time_ms,
        )


async def _store(
    sessionmaker: async_sessionmaker[AsyncSession], execution_id: uuid.UUID, result: Result
) -> bool:
    """Store the verdict; on a row cancelled meanwhile, keep the output it had so far."""
    values = service.result_values(result)
    async with session_scope(sessionmaker) as db:
        if await repository.finish(db, execution_id, values=values, now=datetime.now(UTC)):
            return True
        await repository.keep_output(db, execution_id, values=values)
        return False


async def _final(
    sessionmaker: async_sessionmaker[AsyncSession], execution_id: uuid.UUID
) -> dict[str, object] | None:
    """The execution as GET returns it, once it is over."""
    async with session_scope(sessionmaker) as db:
        execution = await repository.get(db, execution_id)
        if execution is None or execution.status not in TERMINAL:
            return None
        return service.to_read(execution).model_dump(mode="json")


async def fail(
    sessionmaker: async_sessionmaker[AsyncSession], execution_id: uuid.UUID, reason: str
) -> bool:
    """End an execution whose runner crashed as internal_error (if it is still running)."""
    async with session_scope(sessionmaker) as db:
        return await repository.finish(
            db,
            execution_id,
            values={"status": ExecutionStatus.INTERNAL_ERROR, "error": reason},
            now=datetime.now(UTC),
        )
