"""The job `executions.run`: claim an execution, run it in the sandbox, store the result.

The job wrapper owns its transactions (the service functions only flush): one to claim the
row (queued → running), none while the program runs, one to store the verdict.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.executions import repository, service
from coderoom.infra import metrics
from coderoom.infra import sentry as monitoring
from coderoom.infra.db import session_scope
from coderoom.sandbox import Engine, ProgramError
from coderoom.sandbox.result import Result, Status

log = structlog.get_logger(__name__)


MAX_ATTEMPTS = 2


async def run_execution(
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: Engine,
    execution_id: uuid.UUID,
    *,
    retry: bool = False,
    correlation_id: str | None = None,
) -> None:
    """Run one execution. `retry`: the previous attempt's worker died, take over its row."""
    async with session_scope(sessionmaker) as db:
        now = datetime.now(UTC)
        if not await repository.claim(db, execution_id, now=now, retry=retry):
            return  # cancelled, finished, or running elsewhere: nothing to do
        execution = await repository.get(db, execution_id)
        assert execution is not None
        if execution.attempts > MAX_ATTEMPTS:
            await repository.finish(
                db,
                execution_id,
                values={
                    "status": "internal_error",
                    "error": f"the worker running it stopped {MAX_ATTEMPTS} times; not retried",
                },
                now=now,
            )
            log.error("execution.gave_up", execution_id=str(execution_id))
            return
        language = execution.language
        metrics.QUEUE_WAIT.observe(max(0.0, (now - execution.created_at).total_seconds()))
        correlation_id = execution.correlation_id or correlation_id
        program, limits = service.program_of(execution)
        compile_limits = service.compile_limits_of(execution)
    with (
        structlog.contextvars.bound_contextvars(
            execution_id=str(execution_id), language=language, correlation_id=correlation_id
        ),
        monitoring.job_scope(
            execution_id=str(execution_id), language=language, correlation_id=correlation_id
        ),
    ):
        log.info("execution.started")
        started = time.perf_counter()
        try:
            result = await engine.run(language, program, limits, compile_limits=compile_limits)
        except ProgramError as exc:  # unknown language now, or bad stored program
            result = Result(status=Status.INTERNAL_ERROR, message=str(exc))
        metrics.observe_run(
            language, str(result.status), time.perf_counter() - started, result.wall_time_ms
        )
        if result.status is Status.INTERNAL_ERROR:
            log.error("execution.internal_error", message=result.message)
        async with session_scope(sessionmaker) as db:
            stored = await repository.finish(
                db, execution_id, values=service.result_values(result), now=datetime.now(UTC)
            )
        log.info(
            "execution.finished",
            status=str(result.status),
            stored=stored,
            wall_time_ms=result.wall_time_ms,
        )
