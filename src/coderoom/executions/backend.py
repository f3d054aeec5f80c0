"""Where accepted executions go to be run.

`ExecutionBackend` is the interface the API uses: submit after commit, wait for the end,
cancel. `EmbeddedBackend` runs them on a bounded pool of tasks in this process (no Redis);
the scale-out issue backs the same interface with a Redis job queue.

Nothing accepted is lost: on start-up, executions left queued are run again, and ones left
running (the process died mid-run) are re-run up to `MAX_ATTEMPTS` times, then marked
internal_error. On a graceful shutdown, runs that do not finish within the grace period are
put back to queued and run at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.executions import repository
from coderoom.executions.jobs import MAX_ATTEMPTS, run_execution
from coderoom.infra.db import session_scope
from coderoom.sandbox import Engine

log = structlog.get_logger(__name__)


class ExecutionBackend(Protocol):
    async def start(self) -> None: ...

    async def stop(self, grace_seconds: float) -> None: ...

    async def submit(self, execution_id: uuid.UUID, correlation_id: str | None = None) -> None:
        """Queue a committed execution."""

    async def wait(self, execution_id: uuid.UUID, seconds: float) -> bool:
        """Wait up to `seconds` for it to end; True when it has (or is not known here)."""

    async def cancel(self, execution_id: uuid.UUID) -> None:
        """Stop it if it is running (its row is already marked cancelled)."""

    async def depth(self) -> int:
        """Executions waiting for a free slot."""


class EmbeddedBackend:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], engine: Engine, *, concurrency: int
    ) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.concurrency = concurrency
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._done: dict[uuid.UUID, asyncio.Event] = {}
        self._accepting = False

    async def start(self) -> None:
        async with session_scope(self.sessionmaker) as db:
            pending = await repository.recover(db, max_attempts=MAX_ATTEMPTS, now=datetime.now(UTC))
        self._accepting = True
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        for execution_id in pending:
            await self.submit(execution_id)
        if pending:
            log.info("executions.recovered", count=len(pending))

    async def stop(self, grace_seconds: float) -> None:
        self._accepting = False
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=grace_seconds)
        interrupted = [eid for eid, task in self._running.items() if not task.done()]
        for task in self._workers:
            task.cancel()
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._workers, *self._running.values(), return_exceptions=True)
        async with session_scope(self.sessionmaker) as db:
            await repository.requeue(db, interrupted)
        if interrupted:
            log.warning("executions.requeued_on_shutdown", count=len(interrupted))
        await self.engine.close()

    async def submit(self, execution_id: uuid.UUID, correlation_id: str | None = None) -> None:
        del correlation_id  # the job reads it from the row
        self._done.setdefault(execution_id, asyncio.Event())
        if self._accepting:
            self._queue.put_nowait(execution_id)

    async def wait(self, execution_id: uuid.UUID, seconds: float) -> bool:
        event = self._done.get(execution_id)
        if event is None:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
        return event.is_set()

    async def cancel(self, execution_id: uuid.UUID) -> None:
        task = self._running.get(execution_id)
        if task is not None:
            task.cancel()  # the engine kills the sandbox on cancellation

    async def depth(self) -> int:
        return self._queue.qsize()

    async def _fail(self, execution_id: uuid.UUID, error: BaseException | None) -> None:
        """A job that crashed still ends: the execution becomes internal_error."""
        log.error("execution.job_failed", execution_id=str(execution_id), error=repr(error))
        with contextlib.suppress(Exception):
            async with session_scope(self.sessionmaker) as db:
                await repository.finish(
                    db,
                    execution_id,
                    values={"status": "internal_error", "error": "the runner failed"},
                    now=datetime.now(UTC),
                )

    async def _work(self) -> None:
        while True:
            execution_id = await self._queue.get()
            job = asyncio.create_task(run_execution(self.sessionmaker, self.engine, execution_id))
            self._running[execution_id] = job
            try:
                await asyncio.wait([job])
                if not job.cancelled() and job.exception() is not None:
                    await self._fail(execution_id, job.exception())
            finally:
                self._running.pop(execution_id, None)
                event = self._done.pop(execution_id, None)
                if event is not None:
                    event.set()
                self._queue.task_done()
