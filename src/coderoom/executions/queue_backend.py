"""The ExecutionBackend on a Redis job queue (SAQ), for API instances without a sandbox of
their own: `coderoom worker` processes on any number of machines run the jobs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog
from saq import Queue
from saq.job import Status as JobStatus

from coderoom.executions import tasks
from coderoom.infra.queue import QueueError

log = structlog.get_logger(__name__)

TERMINAL_JOB = frozenset({JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.ABORTED})
RECHECK_SECONDS = 0.5  # closes the gap between reading a job's status and subscribing


class QueueBackend:
    def __init__(self, queue: Queue, *, heartbeat_seconds: int) -> None:
        self.queue = queue
        self.heartbeat_seconds = heartbeat_seconds

    async def start(self) -> None:
        try:
            async with asyncio.timeout(5):
                await self.queue.connect()
        except (QueueError, TimeoutError) as exc:  # health says so; 503s until Redis is back
            log.error("executions.queue_unreachable", error=repr(exc))

    async def stop(self, grace_seconds: float) -> None:
        del grace_seconds  # nothing runs here; workers drain their own jobs
        with contextlib.suppress(QueueError, TimeoutError):
            async with asyncio.timeout(5):
                await self.queue.disconnect()

    async def submit(self, execution_id: uuid.UUID, correlation_id: str | None = None) -> None:
        await tasks.enqueue(
            self.queue,
            execution_id,
            correlation_id=correlation_id,
            heartbeat=self.heartbeat_seconds,
        )

    async def _finished(self, key: str) -> bool:
        job = await self.queue.job(key)
        return job is None or job.status in TERMINAL_JOB

    async def wait(self, execution_id: uuid.UUID, seconds: float) -> bool:
        """Wait on the job's pub/sub updates (no database polling); True once it ended."""
        key = str(execution_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if await self._finished(key):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await self.queue.listen(
                    [key],
                    lambda _key, status: status in TERMINAL_JOB,
                    timeout=min(remaining, RECHECK_SECONDS * 20),
                )

    async def cancel(self, execution_id: uuid.UUID) -> None:
        job = await self.queue.job(str(execution_id))
        if job is not None and job.status not in TERMINAL_JOB:
            await self.queue.abort(job, "cancelled")  # the worker running it kills the sandbox

    async def depth(self) -> int:
        return int(await self.queue.count("queued"))

    async def live_workers(self) -> int:
        info = await self.queue.info()
        return len(info.get("workers", {}))
