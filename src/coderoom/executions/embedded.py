"""The embedded backend: executions run on a pool of tasks in this process (no Redis).

Nothing accepted is lost: on start-up, executions left queued are run again, and ones left
running (the process died mid-run) are re-run up to `MAX_ATTEMPTS` times, then marked
internal_error. On a graceful shutdown, runs that do not finish before the deadline are put
back to queued and run at the next start.

That start-up recovery takes over *every* running row, so one database must have one
embedded process: `WORKERS` > 1 without `REDIS_URL` is refused by the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.executions import repository, runner
from coderoom.executions.backend import BackendHealth, Ended, ExecutionEvent, Placement, Submission
from coderoom.executions.errors import QueueFull, SandboxUnavailable
from coderoom.executions.live import LiveRuns, Steer
from coderoom.infra.db import session_scope
from coderoom.sandbox import Engine
from coderoom.sandbox import SandboxUnavailable as SandboxMissing

log = structlog.get_logger(__name__)

RESERVATION_SECONDS = 5.0


class EmbeddedBackend:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: Engine,
        *,
        max_depth: int,
        live: LiveRuns | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.live = live
        self.engine = engine
        self.concurrency = engine.concurrency
        self.max_depth = max_depth
        self.sandbox_problem: str | None = None
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._claimed: set[asyncio.Task[None]] = set()  # runs started at commit, off the queue
        self._reserved: deque[float] = deque()  # when each not-yet-submitted claim was made
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._done: dict[uuid.UUID, asyncio.Event] = {}
        self._accepting = False

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.engine.check)
        except SandboxMissing as exc:
            self.sandbox_problem = str(exc)
            log.error("sandbox.unavailable", reason=self.sandbox_problem)
        async with session_scope(self.sessionmaker) as db:
            pending = await repository.recover(
                db, max_attempts=runner.MAX_ATTEMPTS, now=datetime.now(UTC)
            )
        self._accepting = True
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        for execution_id in pending:
            await self.submit(Submission(execution_id, None, Placement(claimed=False)))
        if pending:
            log.info("executions.recovered", count=len(pending))

    async def stop(self, *, deadline: float) -> None:
        self._accepting = False
        running = list(self._running.values())
        remaining = deadline - asyncio.get_running_loop().time()
        if running and remaining > 0:
            await asyncio.wait(running, timeout=remaining)
        interrupted = [eid for eid, task in self._running.items() if not task.done()]
        tasks = [*self._workers, *self._claimed, *self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if interrupted:
            with contextlib.suppress(Exception):  # unreachable database: recovery at start
                async with session_scope(self.sessionmaker) as db:
                    await repository.requeue(db, interrupted)
            log.warning("executions.requeued_on_shutdown", count=len(interrupted))
        for event in self._done.values():
            event.set()  # nobody waits on a backend that stopped
        await self.engine.drain()

    async def admit(self) -> Placement:
        if self.sandbox_problem is not None:
            raise SandboxUnavailable(f"Code cannot run on this server: {self.sandbox_problem}")
        depth = self._queue.qsize()
        if depth >= self.max_depth:
            raise QueueFull(
                f"{self.max_depth} executions are already waiting; try again shortly.",
                headers={"Retry-After": "5"},
            )
        # A free slot now: the row goes in already running and the run starts at commit.
        # Slots promised to requests that have not committed yet count as taken; a promise
        # whose request rolled back (it never submits) lapses after RESERVATION_SECONDS.
        loop_now = asyncio.get_running_loop().time()
        while self._reserved and self._reserved[0] < loop_now - RESERVATION_SECONDS:
            self._reserved.popleft()
        free = self.concurrency - len(self._running) - len(self._reserved)
        claimed = depth == 0 and free > 0
        if claimed:
            self._reserved.append(loop_now)
        return Placement(claimed=claimed)

    async def submit(self, submission: Submission) -> None:
        if not self._accepting:
            return  # shutting down: the row stays queued and runs at the next start
        self._done.setdefault(submission.execution_id, asyncio.Event())
        if submission.placement.claimed:
            if self._reserved:
                self._reserved.popleft()
            self._start(submission)
        else:
            self._queue.put_nowait(submission)

    async def subscribe(
        self, execution_id: uuid.UUID, *, seconds: float
    ) -> AsyncIterator[ExecutionEvent]:
        event = self._done.get(execution_id)
        if event is None:  # not waiting or running here: over
            yield Ended(execution_id)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
        if event.is_set():
            yield Ended(execution_id)

    async def cancel(self, execution_id: uuid.UUID) -> None:
        if self.live is not None:  # the run stops and keeps its output so far
            self.live.steer(execution_id, Steer.CANCEL)
            return
        task = self._running.get(execution_id)
        if task is not None:
            task.cancel()  # the engine kills the sandbox on cancellation

    async def health(self) -> BackendHealth:
        return BackendHealth(
            status="down" if self.sandbox_problem else "up",
            mode="embedded",
            depth=self._queue.qsize(),
            workers=self.concurrency,
            error=self.sandbox_problem,
        )

    def _start(self, submission: Submission) -> None:
        task = asyncio.create_task(self._run(submission))
        self._claimed.add(task)
        task.add_done_callback(self._claimed.discard)

    async def _run(self, submission: Submission) -> None:
        execution_id = submission.execution_id
        job = asyncio.create_task(
            runner.run_execution(
                self.sessionmaker,
                self.engine,
                execution_id,
                claimed=submission.placement.claimed,
                live=self.live,
            )
        )
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

    async def _fail(self, execution_id: uuid.UUID, error: BaseException | None) -> None:
        """A job that crashed still ends: the execution becomes internal_error."""
        log.error("execution.job_failed", execution_id=str(execution_id), error=repr(error))
        with contextlib.suppress(Exception):  # database gone too: recovery at the next start
            await runner.fail(self.sessionmaker, execution_id, "the runner failed")

    async def _work(self) -> None:
        while True:
            submission = await self._queue.get()
            try:
                await self._run(submission)
            finally:
                self._queue.task_done()
