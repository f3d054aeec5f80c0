"""The `coderoom` command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from coderoom import __version__
from coderoom.cli import doctor as doctor_cmd
from coderoom.cli import languages as languages_cmd
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
    add_completion=False,
    # Plain help and errors, as Unix tools print them: no boxes, no `<bool>` metavars.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"coderoom {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Live coding sessions with sandboxed code execution."""
    if ctx.invoked_subcommand is None:  # `coderoom` alone: the help, as a usage error
        typer.echo(ctx.get_help(), err=True)
        raise typer.Exit(2)


app.command("serve")(serve_cmd.serve)
app.command("migrate")(migrate_cmd.migrate)
app.command("run")(run_cmd.run)
app.command("languages")(languages_cmd.languages)
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
    """Run the command; a usage error is one line on stderr and exit status 2."""
    try:
        status = app(prog_name="coderoom", standalone_mode=False)
    except typer.TyperException as exc:  # click's UsageError and kin (typer vendors click)
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and exc.format_message() == ctx.get_help():  # `coderoom users`
            typer.echo(ctx.get_help(), err=True)
            sys.exit(2)
        command = ctx.command_path if ctx is not None else "coderoom"
        message = " ".join(exc.format_message().split())
        hint = f" (see {command} --help)" if exc.exit_code == 2 else ""
        typer.echo(f"{command}: {message}{hint}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
