"""The ExecutionBackend on a Redis job queue (SAQ), for API instances without a sandbox of
their own: `coderoom worker` processes on any number of machines run the jobs.

Every Redis or SAQ failure is translated here into QueueUnavailable (503 with Retry-After),
so nothing above this module knows which queue is underneath.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import structlog
from saq import Queue
from saq.job import Status as JobStatus

from coderoom.executions import tasks
from coderoom.executions.backend import BackendHealth, Ended, ExecutionEvent, Placement, Submission
from coderoom.executions.errors import QueueFull, QueueUnavailable
from coderoom.executions.live import LiveRuns, Steer
from coderoom.infra.queue import QueueError

log = structlog.get_logger(__name__)

TERMINAL_JOB = frozenset({JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.ABORTED})
LISTEN_SLICE_SECONDS = 10.0  # re-read the job's status at least this often while waiting


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (QueueError, OSError) as exc:  # OSError: refused connect, asyncio timeouts
        raise QueueUnavailable(
            "The execution queue is unreachable; try again shortly.",
            headers={"Retry-After": "5"},
        ) from exc


class QueueBackend:
    def __init__(
        self,
        queue: Queue,
        *,
        heartbeat_seconds: int,
        max_depth: int,
        live: LiveRuns | None = None,
    ) -> None:
        self.queue = queue
        self.live = live
        self.heartbeat_seconds = heartbeat_seconds
        self.max_depth = max_depth

    async def start(self) -> None:
        try:
            with _reachable():
                async with asyncio.timeout(5):
                    await self.queue.connect()
        except QueueUnavailable as exc:  # health says so; 503s until Redis is back
            log.error("executions.queue_unreachable", error=repr(exc.__cause__))

    async def stop(self, *, deadline: float) -> None:
        del deadline  # nothing runs here; workers drain their own jobs
        with contextlib.suppress(QueueError, OSError):
            async with asyncio.timeout(5):
                await self.queue.disconnect()

    async def _depth(self) -> int:
        with _reachable():
            return int(await self.queue.count("queued"))

    async def admit(self) -> Placement:
        if await self._depth() >= self.max_depth:
            raise QueueFull(
                f"{self.max_depth} executions are already waiting; try again shortly.",
                headers={"Retry-After": "5"},
            )
        return Placement(claimed=False)  # a worker claims it

    async def submit(self, submission: Submission) -> None:
        with _reachable():
            await tasks.enqueue(
                self.queue,
                submission.execution_id,
                correlation_id=submission.correlation_id,
                heartbeat=self.heartbeat_seconds,
            )

    async def _finished(self, key: str) -> bool:
        job = await self.queue.job(key)
        return job is None or job.status in TERMINAL_JOB

    async def subscribe(
        self, execution_id: uuid.UUID, *, seconds: float
    ) -> AsyncIterator[ExecutionEvent]:
        """The job's pub/sub updates (no database polling), re-checked every slice."""
        key = str(execution_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            with _reachable():
                if await self._finished(key):
                    yield Ended(execution_id)
                    return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with _reachable(), contextlib.suppress(TimeoutError):
                await self.queue.listen(
                    [key],
                    lambda _key, status: status in TERMINAL_JOB,
                    timeout=min(remaining, LISTEN_SLICE_SECONDS),
                )

    async def cancel(self, execution_id: uuid.UUID) -> None:
        with _reachable():
            job = await self.queue.job(str(execution_id))
            if job is None or job.status in TERMINAL_JOB:
                return
            if job.status is JobStatus.ACTIVE and self.live is not None:
                # The worker running it stops the program and keeps its output so far.
                self.live.steer(execution_id, Steer.CANCEL)
                return
            await self.queue.abort(job, "cancelled")  # the worker running it kills the sandbox

    async def health(self) -> BackendHealth:
        try:
            with _reachable():
                depth = await self._depth()
                workers = len((await self.queue.info()).get("workers", {}))
        except QueueUnavailable as exc:
            return BackendHealth(status="down", mode="queue", error=type(exc.__cause__).__name__)
        # No live worker means accepted executions would wait forever: down.
        return BackendHealth(
            status="up" if workers else "down",
            mode="queue",
            depth=depth,
            workers=workers,
            error=None if workers else "no live worker",
        )
