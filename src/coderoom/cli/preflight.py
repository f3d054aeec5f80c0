"""The checks `coderoom serve` and `coderoom worker` run before starting anything.

Order matters: the listening port first (nothing else has started, so nothing needs undoing),
then the database with its retries, its schema, Redis, and for a worker the sandbox. The
first failure prints one line, `coderoom: …`, and exits (see infra/startup.py for the codes).
"""

from __future__ import annotations

import asyncio
import logging

import typer

from coderoom import migrations
from coderoom.config import Settings
from coderoom.infra.startup import (
    CONFIGURATION,
    StartupProblem,
    check_port_free,
    reach_database,
    reach_redis,
)
from coderoom.sandbox import Engine, SandboxUnavailable


async def _dependencies(settings: Settings) -> None:
    await reach_database(settings)
    problem = await migrations.schema_problem(settings)
    if problem is not None:
        raise StartupProblem(problem, exit_code=CONFIGURATION)
    await reach_redis(settings)


def _sandbox() -> None:
    try:
        Engine().check()
    except SandboxUnavailable as exc:
        raise StartupProblem(
            f"the sandbox cannot run here: {exc} (run `coderoom doctor` for every check)",
            exit_code=CONFIGURATION,
        ) from None


def preflight(settings: Settings, *, listen: tuple[str, int, str] | None, sandbox: bool) -> None:
    """Run the checks; on the first failure print its line and exit with its code."""
    # Alembic announces its context at INFO; the schema check is not a migration.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        if listen is not None:
            host, port, variable = listen
            check_port_free(host, port, variable=variable)
        asyncio.run(_dependencies(settings))
        if sandbox:
            _sandbox()
    except StartupProblem as problem:
        typer.echo(f"coderoom: {problem.message}", err=True)
        raise typer.Exit(problem.exit_code) from None
