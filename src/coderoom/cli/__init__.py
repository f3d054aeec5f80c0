"""The `coderoom` command line."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from coderoom.cli import doctor as doctor_cmd
from coderoom.cli import migrate as migrate_cmd
from coderoom.cli import run as run_cmd
from coderoom.cli import runtimes as runtimes_cmd
from coderoom.cli import serve as serve_cmd
from coderoom.cli import users as users_cmd
from coderoom.cli import worker as worker_cmd
from coderoom.config import Settings, describe_errors

app = typer.Typer(
    name="coderoom",
    help="Live coding sessions with sandboxed code execution.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve_cmd.serve)
app.command("migrate")(migrate_cmd.migrate)
app.command("run")(run_cmd.run)
app.command("worker")(worker_cmd.worker)
app.command("doctor")(doctor_cmd.doctor)
app.add_typer(users_cmd.app, name="users")
app.add_typer(runtimes_cmd.app, name="runtimes")


def load_settings() -> Settings:
    """Settings from the environment, or exit 2 with one line per bad variable, all at once."""
    try:
        return Settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            typer.echo(f"coderoom: {line}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    sys.exit(app())
