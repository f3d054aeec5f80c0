"""`coderoom serve`: run the API under uvicorn."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from coderoom.cli.preflight import preflight
from coderoom.config import Settings, process_layout_problem
from coderoom.infra.logging import configure_logging
from coderoom.infra.metrics import MULTIPROC_ENV

DEFAULT_FACTORY = "coderoom.api.main:create_app_from_env"


def _after_shutdown(signum: int, _frame: FrameType | None) -> None:
    logging.getLogger(__name__).info("server stopped on %s", signal.Signals(signum).name)


def run_server(settings: Settings, *, factory: str = DEFAULT_FACTORY) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, drain within the grace period, exit 0.

    uvicorn owns the signals: on SIGTERM it closes the listening socket, waits up to
    `timeout_graceful_shutdown` for in-flight requests, then runs our lifespan shutdown,
    which closes the database pool and Redis.
    """
    configure_logging(settings.log_level, settings.resolved_log_format)
    preflight(settings, listen=(settings.host, settings.port, "PORT"), sandbox=False)
    # uvicorn handles SIGTERM/SIGINT itself, then restores the previous handlers and raises
    # the signal again so the process dies "by" it (exit -15). A drained, orderly shutdown
    # is a success: make the re-raised signal a no-op so we exit 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _after_shutdown)
    # Workers are separate processes that read the environment again: hand them our
    # overrides (--host/--port come from the command line, not the environment).
    os.environ["HOST"] = settings.host
    os.environ["PORT"] = str(settings.port)
    os.environ["RUN_WORKER"] = "true" if settings.run_worker else "false"
    metrics_dir = _metrics_directory(settings.workers)
    try:
        _serve(settings, factory)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_directory(workers: int) -> str | None:
    """With several uvicorn workers, give prometheus-client a fresh directory for their
    values (multiprocess mode) before they start; the one we made is removed at exit."""
    if workers < 2:
        return None
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        for stale in Path(given).glob("*.db"):  # values of a previous run would be summed in
            stale.unlink()
        return None
    made = tempfile.mkdtemp(prefix="coderoom-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made


def _serve(settings: Settings, factory: str) -> None:
    uvicorn.run(
        factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # we read X-Forwarded-For ourselves, trusting TRUSTED_PROXIES
        # 0 means "do not wait for in-flight requests", not "wait forever" (uvicorn's None).
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,  # type: ignore[arg-type]
        lifespan="on",
    )


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT, 4000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: 1).")] = None,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker", help="Also run an execution worker in this process (needs REDIS_URL)."
        ),
    ] = False,
) -> None:
    """Run the API server."""
    from coderoom.cli import load_settings

    settings = load_settings()
    overrides: dict[str, object] = {
        key: value
        for key, value in {"host": host, "port": port, "workers": workers}.items()
        if value is not None
    }
    if with_worker:
        if settings.redis_url is None:
            typer.echo(
                "coderoom: --with-worker needs REDIS_URL (the queue lives in Redis)", err=True
            )
            raise typer.Exit(2)
        overrides["run_worker"] = True
    if overrides:
        settings = settings.model_copy(update=overrides)  # not validated again: check here
    problem = process_layout_problem(settings.workers, settings.redis_url)
    if problem:
        typer.echo(f"coderoom: {problem}", err=True)
        raise typer.Exit(2)
    run_server(settings)
    # A clean shutdown: the lifespan has closed every pool and flushed monitoring. What is
    # left of a normal exit is the interpreter tearing down every module, measured at
    # 1.3-2.5 s on a busy 2-core machine: past the grace a supervisor gives (SHUTDOWN_GRACE_
    # SECONDS), so it would SIGKILL a server that had already done everything. Leave now.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
