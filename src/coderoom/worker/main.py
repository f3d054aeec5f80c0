"""Run execution jobs from the Redis queue in the local sandbox.

A worker runs at most `WORKER_CONCURRENCY` sandboxes at once (default: CPU count); the queue
holds the rest. On SIGTERM it stops taking jobs, lets running ones finish within
`SHUTDOWN_GRACE_SECONDS`, then exits; jobs it had to cancel are retried elsewhere. Every
worker also reconciles the database with the queue periodically, so executions that Redis
lost (a restart without persistence) are queued again, and runs nobody is doing any more
(their job ended without storing a result) are found within heartbeat + sweep.

While the database is unreachable, jobs back off and retry inside the runner rather than
failing (which would burn SAQ's retries in a second), and the reconciler waits its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any, cast

import structlog
from saq import Worker
from saq.types import Context, PartialTimersDict

from coderoom import bootstrap
from coderoom.config import Settings
from coderoom.executions import tasks
from coderoom.infra import sentry as monitoring
from coderoom.infra.db import DatabaseUnavailable
from coderoom.infra.metrics_server import MetricsServer
from coderoom.infra.queue import QueueError

log = structlog.get_logger(__name__)


async def run_worker(
    settings: Settings, *, stop: asyncio.Event | None = None, handle_signals: bool = True
) -> None:
    """Work until `stop` is set (or SIGTERM/SIGINT when `handle_signals`)."""
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not set: a worker needs the Redis queue")
    stop = stop or asyncio.Event()
    async with bootstrap.worker_services(settings) as services:
        await _work(settings, services, stop, handle_signals=handle_signals)


async def _work(
    settings: Settings,
    services: bootstrap.WorkerServices,
    stop: asyncio.Event,
    *,
    handle_signals: bool,
) -> None:
    queue = services.queue.queue
    sandbox = services.sandbox
    sessionmaker = services.database.sessionmaker
    await queue.connect()

    async def startup(ctx: Context) -> None:
        cast(dict[str, Any], ctx).update(
            sessionmaker=sessionmaker,
            engine=sandbox,
            heartbeat_seconds=settings.worker_heartbeat_seconds,
            live=services.live,
        )

    worker = Worker(
        queue,
        functions=[tasks.run],
        concurrency=sandbox.concurrency,
        startup=startup,
        timers=PartialTimersDict(
            schedule=1, sweep=settings.worker_sweep_seconds, abort=1, worker_info=5
        ),
        shutdown_grace_period_s=int(settings.shutdown_grace_seconds),
        dequeue_timeout=1.0,
    )
    worker.SIGNALS = []  # we own the signals: SAQ must not take them

    async def reconcile_forever() -> None:
        while True:
            try:
                await tasks.reconcile(
                    queue,
                    sessionmaker,
                    heartbeat=settings.worker_heartbeat_seconds,
                    stale_after=settings.worker_heartbeat_seconds + settings.worker_sweep_seconds,
                )
            except (DatabaseUnavailable, QueueError, OSError) as exc:
                log.warning("worker.reconcile_postponed", error=type(exc).__name__)
            except Exception:
                log.exception("worker.reconcile_failed")
            await asyncio.sleep(settings.worker_reconcile_seconds)

    if handle_signals:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    listener = None
    if settings.worker_metrics_port:
        listener = MetricsServer(
            host=settings.worker_metrics_host,
            port=settings.worker_metrics_port,
            token=settings.metrics_token,
            open_access=settings.metrics_open,
        )
        listener.start()
    working = asyncio.create_task(worker.start())
    reconciling = asyncio.create_task(reconcile_forever())
    log.info("worker.started", concurrency=sandbox.concurrency, queue=queue.name)
    try:
        await stop.wait()
    finally:
        log.info("worker.stopping", grace_seconds=settings.shutdown_grace_seconds)
        reconciling.cancel()
        await worker.stop()  # no new jobs; running ones get the grace period
        working.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await working
        await sandbox.drain()  # bootstrap closes it (and its cgroups) on the way out
        with contextlib.suppress(QueueError, OSError):
            await queue.disconnect()
        if listener is not None:
            await asyncio.to_thread(listener.stop)
        log.info("worker.stopped")
        monitoring.flush()
