"""`coderoom runtimes list|install`: which language runtimes exist, which are here, and
installing them in one command.

Runtimes come from Debian packages (apt-get, as root) or, for the few Debian lacks, from a
pinned npm package (with its committed lock file, `npm ci`) or PyPI requirement, put under
RUNTIMES_PREFIX: below /usr, world-readable, so the sandbox's unprivileged uid reads them
through its read-only /usr bind. Without root, `install` prints the exact commands instead
of running them. The plan is a pure function of the registry data and what is installed,
so it is tested without installing anything.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from coderoom.infra.logging import configure_logging
from coderoom.sandbox.languages import (
    RUNTIMES_PREFIX,
    LanguageDataError,
    LanguageRegistry,
    LanguageSpec,
    load_specs,
)

NPM_PACKAGES = Path(__file__).parents[1] / "sandbox" / "runtimes"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
# Wait for another apt (unattended upgrades, a parallel install) rather than fail at once.
APT_LOCK_WAIT = ("-o", "DPkg::Lock::Timeout=600")

app = typer.Typer(help="Language runtimes: list them, install them.", no_args_is_help=True)


@dataclass(frozen=True)
class Step:
    """One command of an installation, and where it runs."""

    argv: tuple[str, ...]
    cwd: str | None = None
    copy: tuple[tuple[str, str], ...] = ()  # (source, destination) files to copy first
    env: tuple[tuple[str, str], ...] = ()

    def shell(self, *, sudo: bool) -> str:
        """The step as a line to paste into a shell."""
        quote = shlex.quote
        lines = [
            f"mkdir -p {quote(os.path.dirname(dst))} && cp {quote(src)} {quote(dst)}"
            for src, dst in self.copy
        ]
        prefix = "sudo " if sudo else ""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        command = f"{prefix}{env + ' ' if env else ''}{shlex.join(self.argv)}"
        if self.cwd:
            command = f"(cd {shlex.quote(self.cwd)} && {command})"
        return " && ".join([f"{prefix}{line}" for line in lines] + [command])


def plan(specs: Iterable[LanguageSpec], *, python: str = sys.executable) -> list[Step]:
    """The commands that install these languages' runtimes: one apt-get for every Debian
    package (after one `apt-get update`), then each npm and PyPI runtime."""
    chosen = list(specs)
    apt = sorted({package for spec in chosen for package in spec.install.apt})
    steps: list[Step] = []
    if apt:
        env = tuple(APT_ENV.items())
        install_argv = ("install", "-y", "-qq", "--no-install-recommends", *apt)
        steps.append(Step(("apt-get", *APT_LOCK_WAIT, "update", "-qq"), env=env))
        steps.append(Step(("apt-get", *APT_LOCK_WAIT, *install_argv), env=env))
    for spec in chosen:
        if spec.install.npm is not None:
            source = NPM_PACKAGES / spec.install.npm
            target = f"{RUNTIMES_PREFIX}/{spec.install.npm}"
            files = ("package.json", "package-lock.json")
            steps.append(
                Step(
                    ("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--omit=dev"),
                    cwd=target,
                    copy=tuple((str(source / name), f"{target}/{name}") for name in files),
                )
            )
        if spec.install.pip is not None:
            target = f"{RUNTIMES_PREFIX}/{spec.id}"
            pip = ("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps")
            steps.append(Step((python, *pip, "--upgrade", "--target", target, spec.install.pip)))
    return steps


def choose(
    specs: Sequence[LanguageSpec], names: Sequence[str], *, every: bool, defaults: bool
) -> list[LanguageSpec]:
    """The specs named (ids or aliases), all of them, or the default set."""
    if every:
        return list(specs)
    if defaults:
        return [spec for spec in specs if spec.default]
    by_name = {name: spec for spec in specs for name in (spec.id, *spec.aliases)}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise typer.BadParameter(
            f"unknown language {', '.join(unknown)}; known: "
            + ", ".join(sorted(spec.id for spec in specs))
        )
    return list({by_name[name].id: by_name[name] for name in names}.values())


def _specs() -> tuple[LanguageSpec, ...]:
    from coderoom.cli import load_settings

    configure_logging("WARNING", "console")
    settings = load_settings()
    try:
        return load_specs(*settings.language_files)
    except LanguageDataError as exc:
        typer.echo(f"coderoom: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(step: Step) -> None:
    for source, destination in step.copy:
        Path(destination).parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        shutil.copyfile(source, destination)
        os.chmod(destination, 0o644)
    typer.echo(f"+ {step.shell(sudo=False)}", err=True)
    # umask 022: whatever is installed must be readable by the sandbox's unprivileged uid.
    done = subprocess.run(  # noqa: S603 - argv from the registry's data, no shell
        step.argv,
        cwd=step.cwd,
        env={**os.environ, **dict(step.env)},
        check=False,
        preexec_fn=lambda: os.umask(0o022),
    )
    if done.returncode != 0:
        typer.echo(f"coderoom: {step.argv[0]} failed (exit {done.returncode})", err=True)
        raise typer.Exit(1)


@app.command("list")
def list_runtimes(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every known language: installed here or not, its version, how to install it."""
    specs = _specs()
    registry = LanguageRegistry.detect(specs)
    rows = []
    for spec in sorted(specs, key=lambda s: s.id):
        language = registry.get(spec.id)
        rows.append(
            {
                "id": spec.id,
                "name": spec.name,
                "installed": language is not None,
                "version": language.version if language else None,
                "default": spec.default,
                "aliases": list(spec.aliases),
                "packages": [
                    *spec.install.apt,
                    *filter(None, [spec.install.npm, spec.install.pip]),
                ],
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = str(row["version"]) if row["installed"] else "-"
        mark = "*" if row["default"] else " "
        typer.echo(f"{mark} {row['id']:<12} {state:<14} {row['name']}")
    installed = sum(1 for row in rows if row["installed"])
    typer.echo(f"{installed} of {len(rows)} installed (* = default set: make run)")


@app.command("install")
def install(
    names: Annotated[list[str] | None, typer.Argument(help="Language ids or aliases.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every known language.")] = False,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="The small default set (make run).")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the commands, run nothing.")] = False,
) -> None:
    """Install the runtimes of these languages (skipping those already here): apt-get as
    root; otherwise print the exact commands to run and exit 1."""
    specs = _specs()
    if not (names or every or defaults):
        raise typer.BadParameter("name languages, or pass --all or --defaults")
    chosen = choose(specs, names or [], every=every, defaults=defaults)
    present = LanguageRegistry.detect(chosen)
    missing = [spec for spec in chosen if present.get(spec.id) is None]
    if not missing:
        typer.echo(f"coderoom: already installed: {', '.join(s.id for s in chosen)}")
        return
    steps = plan(missing)
    root = os.geteuid() == 0
    if dry_run or not root:
        if not root and not dry_run:
            typer.echo("coderoom: installing runtimes needs root; run:", err=True)
        for step in steps:
            typer.echo(step.shell(sudo=not root))
        raise typer.Exit(0 if dry_run else 1)
    for step in steps:
        _run(step)
    after = LanguageRegistry.detect(missing)
    still = [spec.id for spec in missing if after.get(spec.id) is None]
    if still:
        typer.echo(f"coderoom: still unavailable after installing: {', '.join(still)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"coderoom: installed {', '.join(f'{lang.id} {lang.version}' for lang in after)}")
