"""`coderoom migrate`: apply, inspect and list schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from coderoom import migrations
from coderoom.infra.db import DatabaseUnavailable
from coderoom.infra.logging import configure_logging


def migrate(
    show_status: Annotated[
        bool, typer.Option("--status", help="Print the current revision and pending ones.")
    ] = False,
    show_history: Annotated[
        bool, typer.Option("--history", help="List every revision, oldest first.")
    ] = False,
    revision: Annotated[str, typer.Option(help="Target revision to upgrade to.")] = "head",
) -> None:
    """Upgrade the database schema to the latest revision (or inspect it)."""
    from coderoom.cli import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, settings.resolved_log_format)
    if show_history:
        for line in migrations.history(settings):
            typer.echo(line)
        return
    try:
        if show_status:
            status = migrations.status(settings)
            typer.echo(f"current: {', '.join(status.current) or '(none)'}")
            typer.echo(f"head:    {', '.join(status.heads)}")
            typer.echo(f"pending: {', '.join(status.pending) or '(none)'}")
            return
        migrations.upgrade(settings, revision)
    except DatabaseUnavailable as exc:
        typer.echo(f"coderoom: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"database is at {', '.join(migrations.status(settings).current)}")
