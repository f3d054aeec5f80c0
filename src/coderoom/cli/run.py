"""`coderoom run FILE`: run a file in the sandbox from the shell and print the verdict."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from coderoom import bootstrap
from coderoom.infra.logging import configure_logging
from coderoom.sandbox import (
    Engine,
    Limits,
    LimitsError,
    Program,
    ProgramError,
    Result,
    SandboxUnavailable,
)
from coderoom.sandbox.engine import UnknownLanguage


def _guess_language(engine: Engine, path: Path) -> str | None:
    for language in engine.registry:
        if path.suffix and path.suffix in language.spec.extensions:
            return language.id
    return None


async def _run_once(engine: Engine, language_id: str, program: Program, limits: Limits) -> Result:
    language = engine.registry.get(language_id)
    compile_limits = language.compile_limits if language is not None else None
    try:
        return await engine.run(language_id, program, limits, compile_limits=compile_limits)
    finally:
        await engine.close()  # leaves no cgroup behind


def run(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    language: Annotated[
        str | None, typer.Option(help="Language id (default: from the file's extension).")
    ] = None,
    stdin: Annotated[Path | None, typer.Option(help="File to feed to the program's stdin.")] = None,
    time_limit: Annotated[int | None, typer.Option(help="CPU time limit, ms.")] = None,
    wall_limit: Annotated[int | None, typer.Option(help="Wall time limit, ms.")] = None,
    memory_limit: Annotated[int | None, typer.Option(help="Memory limit, MiB.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON.")
    ] = False,
    args: Annotated[list[str] | None, typer.Argument(help="Arguments for the program.")] = None,
) -> None:
    """Run FILE in the sandbox and print the verdict (exit 0 when the program succeeded)."""
    from coderoom.cli import load_settings

    configure_logging("WARNING", "console")
    engine = bootstrap.sandbox_engine(load_settings())
    language_id = language or _guess_language(engine, file)
    if language_id is None:
        typer.echo(
            f"coderoom: cannot tell the language of {file.name}; pass --language "
            f"({', '.join(engine.registry.ids())})",
            err=True,
        )
        raise typer.Exit(2)
    try:
        found = engine.registry.get(language_id)
        base, maxima = (found.limits, found.maxima) if found else (Limits(), None)
        limits = base.merged(
            {"cpu_time_ms": time_limit, "wall_time_ms": wall_limit, "memory_mb": memory_limit},
            maxima=maxima,
        )
        program = Program.single(
            file.name,
            file.read_text(encoding="utf-8"),
            stdin=stdin.read_text(encoding="utf-8") if stdin else "",
            args=tuple(args or ()),
        )
        result = asyncio.run(_run_once(engine, language_id, program, limits))
    except (LimitsError, ProgramError, UnknownLanguage) as exc:
        typer.echo(f"coderoom: {exc}", err=True)
        raise typer.Exit(2) from None
    except SandboxUnavailable as exc:
        typer.echo(f"coderoom: the sandbox is unavailable: {exc}", err=True)
        raise typer.Exit(3) from None
    if as_json:
        typer.echo(
            json.dumps(
                {k: str(v) if k == "status" else v for k, v in result.__dict__.items()}, indent=2
            )
        )
    else:
        if result.compile_output:
            typer.echo(result.compile_output, err=True, nl=False)
        typer.echo(result.stdout, nl=False)
        typer.echo(result.stderr, err=True, nl=False)
        typer.echo(
            f"--- {result.status} exit={result.exit_code} signal={result.signal} "
            f"wall={result.wall_time_ms}ms cpu={result.cpu_time_ms}ms "
            f"memory={result.memory_kb}KiB" + (f" ({result.message})" if result.message else ""),
            err=True,
        )
    raise typer.Exit(0 if result.status == "succeeded" else 1)
