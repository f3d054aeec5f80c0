"""`coderoom run FILE [ARGS]...`: run a file in the sandbox from the shell, like a Unix tool.

- The program's stdin: `--stdin FILE`, `--stdin -` (this command's stdin), or, without
  `--stdin`, this command's stdin when it is a pipe or a file (`echo hi | coderoom run x.py`);
  nothing when it is a terminal.
- Its stdout and stderr go to ours, byte for byte. The verdict goes to stderr on a line of
  its own: when the output before it did not end a line on the same terminal or file, a
  newline is written to stderr first (never to stdout, whose bytes stay the program's).
- The exit status is the program's own (`sys.exit(3)` → 3; a signal → 128+N, so a timeout
  or OOM kill is 137, as a shell reports it). A program that never ran: 1 for a compile
  error, 125 when the sandbox failed or is unavailable. Usage problems: a one-line error
  and 2. `--json` prints the whole result instead of output and verdict, same exit status.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

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
from coderoom.sandbox.verdict import SIGNAL_BASE

#: Exit statuses of our own, when the program gave none (as timeout(1) and env(1) do).
EXIT_USAGE = 2
EXIT_COMPILE_ERROR = 1
EXIT_SANDBOX_FAILED = 125


def usage_error(message: str) -> typer.Exit:
    typer.echo(f"coderoom run: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


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


def read_text(path: Path, what: str) -> str:
    """A file's text, or a usage error naming it (never a traceback)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise usage_error(f"cannot read {what} {path}: {reason}") from None


def program_stdin(option: str | None) -> str:
    """What the program reads: `--stdin FILE`, `--stdin -`, or our stdin unless a terminal."""
    if option == "-" or (option is None and not sys.stdin.isatty()):
        return sys.stdin.buffer.read().decode("utf-8", errors="replace")
    if option is None:
        return ""
    return read_text(Path(option), "--stdin file")


def exit_status(result: Result) -> int:
    """The program's own status (128+N for a signal), else ours."""
    if result.exit_code is not None:
        return result.exit_code
    if result.signal is not None:
        return SIGNAL_BASE + result.signal
    return EXIT_COMPILE_ERROR if result.status == "compile_error" else EXIT_SANDBOX_FAILED


def same_destination(first: int, second: int) -> bool:
    """Whether two file descriptors write to the same file or terminal."""
    try:
        a, b = os.fstat(first), os.fstat(second)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def needs_newline(result: Result, *, shared: bool) -> bool:
    """Whether the verdict needs a newline before it to start a line of its own."""
    if result.stderr:
        return not result.stderr.endswith("\n")
    if result.stdout and shared:
        return not result.stdout.endswith("\n")
    if result.compile_output:
        return not result.compile_output.endswith("\n")
    return False


def verdict_line(result: Result) -> str:
    return (
        f"--- {result.status} exit={result.exit_code} signal={result.signal} "
        f"wall={result.wall_time_ms}ms cpu={result.cpu_time_ms}ms "
        f"memory={result.memory_kb}KiB" + (f" ({result.message})" if result.message else "")
    )


def _as_json(result: Result) -> str:
    values: dict[str, Any] = dict(result.__dict__)
    values["status"] = str(result.status)
    return json.dumps(values, indent=2)


def _write(stream: Any, text: str) -> None:
    stream.write(text.encode("utf-8", errors="replace"))
    stream.flush()


def run(
    file: Annotated[Path, typer.Argument(help="The program.", show_default=False)],
    args: Annotated[
        list[str] | None,
        typer.Argument(help="Arguments for the program (after --).", show_default=False),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(
            "--language", "-l", metavar="ID", help="Language id or alias (default: from FILE)."
        ),
    ] = None,
    stdin: Annotated[
        str | None,
        typer.Option(
            "--stdin",
            metavar="FILE",
            help="The program's stdin: a file, or - for this command's stdin. "
            "Default: this command's stdin when it is a pipe or a file.",
        ),
    ] = None,
    time_limit: Annotated[
        int | None, typer.Option(metavar="MS", help="CPU time limit, ms.")
    ] = None,
    wall_limit: Annotated[
        int | None, typer.Option(metavar="MS", help="Wall time limit, ms.")
    ] = None,
    memory_limit: Annotated[
        int | None, typer.Option(metavar="MIB", help="Memory limit, MiB.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON instead.")
    ] = False,
) -> None:
    """Run FILE in the sandbox. Its output is yours, the verdict goes to stderr, and the
    exit status is the program's (128+N for a signal; 2 for a usage error, 1 for a compile
    error, 125 when the sandbox failed)."""
    from coderoom.cli import load_settings

    source = read_text(file, "program")
    program_input = program_stdin(stdin)
    configure_logging("ERROR", "console")  # a missing toolchain elsewhere is no news here
    engine = bootstrap.sandbox_engine(load_settings())
    language_id = language or _guess_language(engine, file)
    if language_id is None:
        raise usage_error(
            f"cannot tell the language of {file.name}; pass --language "
            f"({', '.join(engine.registry.ids())})"
        )
    try:
        found = engine.registry.get(language_id)
        base, maxima = (found.limits, found.maxima) if found else (Limits(), None)
        limits = base.merged(
            {"cpu_time_ms": time_limit, "wall_time_ms": wall_limit, "memory_mb": memory_limit},
            maxima=maxima,
        )
        program = Program.single(file.name, source, stdin=program_input, args=tuple(args or ()))
        result = asyncio.run(_run_once(engine, language_id, program, limits))
    except (LimitsError, ProgramError, UnknownLanguage) as exc:
        raise usage_error(str(exc)) from None
    except SandboxUnavailable as exc:
        typer.echo(f"coderoom run: the sandbox is unavailable: {exc}", err=True)
        raise typer.Exit(EXIT_SANDBOX_FAILED) from None
    if as_json:
        typer.echo(_as_json(result))
    else:
        _write(sys.stderr.buffer, result.compile_output)
        _write(sys.stdout.buffer, result.stdout)
        _write(sys.stderr.buffer, result.stderr)
        shared = same_destination(sys.stdout.fileno(), sys.stderr.fileno())
        newline = "\n" if needs_newline(result, shared=shared) else ""
        _write(sys.stderr.buffer, newline + verdict_line(result) + "\n")
    raise typer.Exit(exit_status(result))
