"""Migrations: reversible, transactional, matching the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from coderoom import migrations
from coderoom.config import Settings
from coderoom.infra.db import create_engine
from tests.conftest import make_settings
from tests.support.services import create_postgres_database, drop_postgres_database

BAD_MIGRATIONS = Path(__file__).parent / "support" / "bad_migration"
TABLES = {
    "users",
    "refresh_tokens",
    "sessions",
    "session_participants",
    "session_invites",
    "executions",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield make_settings(database_url=f"sqlite:///{tmp_path / 'm.sqlite3'}")
        return
    url = create_postgres_database()
    try:
        yield make_settings(database_url=url)
    finally:
        drop_postgres_database(url)


def _inspect(settings: Settings, fn: Callable[[Connection], object]) -> object:
    async def run() -> object:
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def tables(settings: Settings) -> set[str]:
    names = _inspect(settings, lambda c: set(inspect(c).get_table_names()))
    assert isinstance(names, set)
    return names - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_db: Settings) -> None:
    migrations.upgrade(empty_db)
    assert tables(empty_db) == TABLES
    assert migrations.status(empty_db).up_to_date
    migrations.downgrade(empty_db, "base")
    assert tables(empty_db) == set()
    assert migrations.status(empty_db).current == ()
    migrations.upgrade(empty_db)
    assert tables(empty_db) == TABLES


def test_models_match_migrations(empty_db: Settings) -> None:
    migrations.upgrade(empty_db)

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, migrations.target_metadata()))

    assert _inspect(empty_db, diff) == []


def test_failing_migration_leaves_the_schema_as_it_was(empty_db: Settings) -> None:
    migrations.upgrade(empty_db)
    with pytest.raises(RuntimeError, match="failed halfway"):
        migrations.upgrade(empty_db, extra_version_dirs=[BAD_MIGRATIONS])
    assert "half_done" not in tables(empty_db)
    assert migrations.status(empty_db).current == ("0005",)


def test_status_lists_pending_revisions(empty_db: Settings) -> None:
    before = migrations.status(empty_db)
    assert before.current == ()
    assert before.pending == ("0001", "0005")
    migrations.upgrade(empty_db)
    assert migrations.status(empty_db).pending == ()


def _cli(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    environment.update({"DATABASE_URL": database_url, "ENVIRONMENT": "test", **env})
    return subprocess.run(
        [sys.executable, "-m", "coderoom", "migrate", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_command_applies_and_reports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    status = _cli("--status", database_url=url)
    assert status.returncode == 0, status.stderr
    assert "pending: 0001" in status.stdout
    applied = _cli(database_url=url)
    assert applied.returncode == 0, applied.stderr
    assert "database is at 0005" in applied.stdout
    status = _cli("--status", database_url=url)
    assert "current: 0005" in status.stdout
    assert "pending: (none)" in status.stdout
    history = _cli("--history", database_url=url)
    assert history.stdout.startswith("0001  initial schema")


def test_migrate_command_gives_up_on_an_unreachable_database() -> None:
    result = _cli(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        DATABASE_CONNECT_ATTEMPTS="3",
        DATABASE_CONNECT_INTERVAL_SECONDS="0",
    )
    assert result.returncode == 1
    assert "database unreachable after 3 attempts" in result.stderr
    assert result.stderr.count("database.connect_failed") == 3
