"""`coderoom languages`: the languages this machine can run, as the server would offer them."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from coderoom.infra.logging import configure_logging
from coderoom.sandbox.languages import LanguageRegistry


def languages(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The installed languages: id, version and aliases (`coderoom runtimes list` shows
    every known one, installed or not)."""
    from coderoom.cli import load_settings

    configure_logging("ERROR", "console")  # a missing toolchain elsewhere is no news here
    settings = load_settings()
    # What the server would offer: the same selection (LANGUAGES) and data files.
    registry = LanguageRegistry.default(settings.languages, settings.language_files)
    rows = [
        {"id": language.id, "version": language.version, "aliases": list(language.aliases)}
        for language in sorted(registry, key=lambda language: language.id)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['id']:<12} {row['version']:<14} {', '.join(row['aliases'])}".rstrip())
