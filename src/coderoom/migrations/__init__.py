"""Versioned schema migrations (Alembic), run by `coderoom migrate` and by the tests.

Migrations live inside the package so an installed `coderoom` can migrate without a source
checkout. Each revision runs in its own transaction (PostgreSQL and SQLite both have
transactional DDL), so a failing migration leaves the schema as it was; the applied revision
is tracked in the database's `alembic_version` table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from coderoom.config import Settings

MIGRATIONS_DIR = Path(__file__).parent

T = TypeVar("T")


def target_metadata() -> MetaData:
    """The metadata of every model, imported here so no model is forgotten."""
    from coderoom.auth import models as _auth  # noqa: F401
    from coderoom.executions import models as _executions  # noqa: F401
    from coderoom.infra.orm import Base
    from coderoom.live import models as _live  # noqa: F401
    from coderoom.sessions import models as _sessions  # noqa: F401

    return Base.metadata


def alembic_config(settings: Settings, *, extra_version_dirs: Sequence[Path] = ()) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(MIGRATIONS_DIR / "versions"), *map(str, extra_version_dirs)]
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    config.attributes["settings"] = settings
    return config


@dataclass(frozen=True)
class MigrationStatus:
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


async def _wait(settings: Settings) -> None:
    from coderoom import bootstrap  # the composition root imports the domains' models

    async with bootstrap.open_database(settings):
        pass


def upgrade(settings: Settings, revision: str = "head", **kwargs: Sequence[Path]) -> None:
    """Apply migrations up to `revision`, after waiting for the database like the server does."""
    asyncio.run(_wait(settings))
    command.upgrade(alembic_config(settings, **kwargs), revision)


def downgrade(settings: Settings, revision: str, **kwargs: Sequence[Path]) -> None:
    command.downgrade(alembic_config(settings, **kwargs), revision)


def status(settings: Settings) -> MigrationStatus:
    config = alembic_config(settings)
    script = ScriptDirectory.from_config(config)

    def read(connection: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(connection).get_current_heads())

    current = asyncio.run(_run_sync(settings, read))
    heads = tuple(script.get_heads())
    pending = [
        rev.revision
        for rev in script.iterate_revisions(heads, current or "base")
        if rev.revision not in current
    ]
    return MigrationStatus(current=current, heads=heads, pending=tuple(reversed(pending)))


async def schema_problem(settings: Settings) -> str | None:
    """Why this database cannot serve this version of coderoom, or None when it can.

    Compares the revision recorded in the database with the newest this code knows: none
    (never migrated), older (migrations pending) or unknown (the database was migrated by a
    newer coderoom) each get one sentence naming what to do.
    """
    script = ScriptDirectory.from_config(alembic_config(settings))
    heads = set(script.get_heads())

    def read(connection: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(connection).get_current_heads())

    current = set(await _run_sync(settings, read))
    if current == heads:
        return None
    if not current:
        return "the database has no coderoom schema yet: run `coderoom migrate`"
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = current - known
    if unknown:
        return (
            f"the database schema is at {', '.join(sorted(unknown))}, which this version of "
            "coderoom does not know (it was migrated by a newer one): run that version, or "
            "upgrade coderoom"
        )
    return (
        f"the database schema is at {', '.join(sorted(current))} but this version needs "
        f"{', '.join(sorted(heads))}: run `coderoom migrate`"
    )


def history(settings: Settings) -> list[str]:
    """Every revision, oldest first, as `revision  message` lines."""
    script = ScriptDirectory.from_config(alembic_config(settings))
    revisions = list(script.walk_revisions())
    return [f"{rev.revision}  {rev.doc}" for rev in reversed(revisions)]


async def _run_sync(settings: Settings, fn: Callable[[Connection], T]) -> T:
    from coderoom import bootstrap

    async with (
        bootstrap.open_database(settings) as database,
        database.engine.connect() as connection,
    ):
        return await connection.run_sync(fn)
