"""Migrations: reversible, transactional, matching the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    String,
    Uuid,
    column,
    insert,
    inspect,
    select,
    table,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from coderoom import migrations
from coderoom.config import Settings
from coderoom.infra.db import create_engine
from coderoom.infra.orm import UTCDateTime
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
    "api_keys",
    "signup_invites",
    "live_updates",
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
    assert migrations.status(empty_db).current == migrations.status(empty_db).heads


def test_status_lists_pending_revisions(empty_db: Settings) -> None:
    before = migrations.status(empty_db)
    assert before.current == ()
    assert before.pending[0] == "0001"
    assert before.pending[-1:] == before.heads
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
    head = migrations.status(make_settings(database_url=url)).heads[0]
    assert "pending: 0001, " in status.stdout
    applied = _cli(database_url=url)
    assert applied.returncode == 0, applied.stderr
    assert f"database is at {head}" in applied.stdout
    status = _cli("--status", database_url=url)
    assert f"current: {head}" in status.stdout
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


_USERS = table(
    "users",
    column("id", Uuid()),
    column("email", String()),
    column("password_hash", String()),
    column("display_name", String()),
    column("created_at", UTCDateTime()),
    column("updated_at", UTCDateTime()),
)
_EXECUTIONS = table(
    "executions",
    *(column(name, String()) for name in ("language", "status", "stdin", "stdout", "stderr")),
    *(column(name, JSON()) for name in ("files", "args", "limits")),
    column("compile_output", String()),
    column("stdout_truncated", Boolean()),
    column("stderr_truncated", Boolean()),
    column("attempts", Integer()),
    column("id", Uuid()),
    column("created_by", Uuid()),
    column("created_at", UTCDateTime()),
)


def _insert_execution(settings: Settings, status: str) -> None:
    """Write one execution row with `status` below the ORM, as a buggy writer would."""

    async def run() -> None:
        engine = create_engine(settings)
        user, now = uuid.uuid4(), datetime.now(UTC)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(_USERS).values(
                        id=user,
                        email=f"{user}@example.com",
                        password_hash="x",
                        display_name="u",
                        created_at=now,
                        updated_at=now,
                    )
                )
                await connection.execute(
                    insert(_EXECUTIONS).values(
                        id=uuid.uuid4(),
                        language="python",
                        status=status,
                        files=[],
                        args=[],
                        limits={},
                        stdin="",
                        stdout="",
                        stderr="",
                        compile_output="",
                        stdout_truncated=False,
                        stderr_truncated=False,
                        attempts=0,
                        created_by=user,
                        created_at=now,
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_the_status_column_refuses_unknown_statuses(empty_db: Settings) -> None:
    migrations.upgrade(empty_db)
    _insert_execution(empty_db, "succeeded")
    with pytest.raises(IntegrityError, match=r"ck_executions_status|CHECK constraint"):
        _insert_execution(empty_db, "exploded")


def test_status_check_comes_off_with_its_revision(empty_db: Settings) -> None:
    migrations.upgrade(empty_db)
    migrations.downgrade(empty_db, "0001")
    _insert_execution(empty_db, "exploded")  # 0001 had no constraint
    assert migrations.status(empty_db).current == ("0001",)
    with pytest.raises(IntegrityError):  # the unknown row now blocks the constraint
        migrations.upgrade(empty_db)
    assert migrations.status(empty_db).current == ("0001",)


def _insert_users(settings: Settings, *emails: str) -> None:
    async def run() -> None:
        engine = create_engine(settings)
        now = datetime.now(UTC)
        try:
            async with engine.begin() as connection:
                for email in emails:
                    await connection.execute(
                        insert(_USERS).values(
                            id=uuid.uuid4(),
                            email=email,
                            password_hash="x",
                            display_name="u",
                            created_at=now,
                            updated_at=now,
                        )
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())


def _emails(settings: Settings) -> set[str]:
    def read(connection: Connection) -> set[str]:
        return {row[0] for row in connection.execute(select(_USERS.c.email))}

    found = _inspect(settings, read)
    assert isinstance(found, set)
    return found


def test_0008_folds_stored_emails_and_leaves_clashes_to_the_operator(
    empty_db: Settings,
) -> None:
    migrations.upgrade(empty_db, "0005")
    # As the old code stored them: lower-cased only.
    _insert_users(empty_db, "\uff42\uff45\uff41@example.com", "stra\u00dfe@example.com")
    _insert_users(empty_db, "\uff43\uff41\uff54@example.com", "cat@example.com")
    migrations.upgrade(empty_db)
    assert _emails(empty_db) == {
        "bea@example.com",
        "strasse@example.com",
        "\uff43\uff41\uff54@example.com",  # would clash with cat@: left for the operator
        "cat@example.com",
    }
