"""`coderoom worker`: run execution jobs from the Redis queue."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from coderoom.cli.preflight import preflight
from coderoom.infra.logging import configure_logging
from coderoom.infra.sentry import init_sentry


def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Sandboxes at once (default: WORKER_CONCURRENCY, CPUs).")
    ] = None,
) -> None:
    """Run execution jobs from the Redis queue (REDIS_URL) until SIGTERM."""
    from coderoom.cli import load_settings
    from coderoom.worker.main import run_worker

    settings = load_settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    init_sentry(settings)
    configure_logging(settings.log_level, settings.resolved_log_format)
    if settings.redis_url is None:
        typer.echo("coderoom: REDIS_URL must be set for a worker", err=True)
        raise typer.Exit(2)
    listen = None
    if settings.worker_metrics_port:
        listen = (settings.worker_metrics_host, settings.worker_metrics_port, "WORKER_METRICS_PORT")
    preflight(settings, listen=listen, sandbox=True)
    asyncio.run(run_worker(settings))
