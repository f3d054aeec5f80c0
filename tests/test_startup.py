"""Start-up that explains itself: the real `coderoom` command, one line per problem."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from coderoom import migrations
from tests.conftest import make_settings
from tests.support.server import REPO
from tests.support.services import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
)

pytestmark = pytest.mark.server

STRONG_SECRET = "s" * 48


def coderoom(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "JWT_", "CORS_", "PORT", "HOST"))
    }
    environment.update(
        {
            "ENVIRONMENT": "test",
            "PYTHONPATH": str(REPO),
            "DATABASE_CONNECT_ATTEMPTS": "1",
            "DATABASE_CONNECT_INTERVAL_SECONDS": "0",
            "PORT": str(free_port()),
            "HOST": "127.0.0.1",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "coderoom", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def problem_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines meant for the operator; there is never a traceback."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    return [line for line in result.stderr.splitlines() if line.startswith("coderoom: ")]


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[str]:
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


def test_every_misconfiguration_is_reported_at_once(tmp_path: Path) -> None:
    result = coderoom(
        tmp_path,
        "serve",
        ENVIRONMENT="production",
        DATABASE_URL="sqlite:///prod.sqlite3",
        JWT_SECRET="short",
        WORKERS="0",
        RATE_LIMIT_API="lots",
    )
    assert result.returncode == 2
    lines = problem_lines(result)
    named = sorted(line.split(":")[1].strip() for line in lines)
    assert named == sorted(
        ["DATABASE_URL", "JWT_SECRET", "WORKERS", "RATE_LIMIT_API", "CORS_ORIGINS"]
    ), lines
    assert len(lines) == len(result.stderr.strip().splitlines())


def test_production_refuses_the_localhost_cors_default(tmp_path: Path) -> None:
    result = coderoom(
        tmp_path,
        "serve",
        ENVIRONMENT="production",
        DATABASE_URL="postgresql://u@127.0.0.1:1/x",
        JWT_SECRET=STRONG_SECRET,
    )
    assert result.returncode == 2
    assert problem_lines(result) == [
        "coderoom: CORS_ORIGINS: must be set in production to your site's origins "
        "(the default allows only localhost)"
    ]


def test_an_unmigrated_database_names_coderoom_migrate(tmp_path: Path) -> None:
    result = coderoom(tmp_path, "serve", DATABASE_URL=f"sqlite:///{tmp_path}/new.sqlite3")
    assert result.returncode == 2
    assert problem_lines(result) == [
        "coderoom: the database has no coderoom schema yet: run `coderoom migrate`"
    ]


def test_an_outdated_schema_names_coderoom_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    migrations.upgrade(make_settings(database_url=url), "0001")
    result = coderoom(tmp_path, "worker", DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 2
    (line,) = problem_lines(result)
    assert line.startswith("coderoom: the database schema is at 0001 but this version needs ")
    assert line.endswith(": run `coderoom migrate`")


def test_a_schema_from_a_newer_coderoom_is_named(tmp_path: Path, postgres: str) -> None:
    migrations.upgrade(make_settings(database_url=postgres))

    async def stamp() -> None:
        connection = await asyncpg.connect(postgres)
        try:
            await connection.execute("UPDATE alembic_version SET version_num = '9999'")
        finally:
            await connection.close()

    asyncio.run(stamp())
    result = coderoom(tmp_path, "serve", DATABASE_URL=postgres)
    assert result.returncode == 2
    (line,) = problem_lines(result)
    assert "9999" in line
    assert "newer" in line


def test_an_unreachable_database_is_one_line_with_its_host(tmp_path: Path) -> None:
    port = free_port()
    result = coderoom(
        tmp_path,
        "serve",
        DATABASE_URL=f"postgresql://someone:hunter2@127.0.0.1:{port}/appdb",
        DATABASE_CONNECT_ATTEMPTS="3",
    )
    assert result.returncode == 1
    (line,) = problem_lines(result)
    assert line.startswith(f"coderoom: cannot reach the database at 127.0.0.1:{port}/appdb: ")
    assert "after 3 attempts" in line
    assert "ConnectionRefusedError" in line
    assert "hunter2" not in result.stdout + result.stderr
    assert result.stderr.count("database.connect_failed") == 3


def test_an_unreachable_redis_is_one_line_with_its_host(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    result = coderoom(
        tmp_path,
        "serve",
        DATABASE_URL=sqlite_url,
        REDIS_URL=f"redis://:secret-pass@127.0.0.1:{port}/3",
        DATABASE_CONNECT_ATTEMPTS="2",
    )
    assert result.returncode == 1
    (line,) = problem_lines(result)
    assert line.startswith(f"coderoom: cannot reach Redis at 127.0.0.1:{port}/3 after 2 attempts: ")
    assert "secret-pass" not in result.stdout + result.stderr


def test_a_port_in_use_is_reported_before_anything_else_starts(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # A database that never answers: if the port were checked after it, this run would
        # spend its 60 attempts waiting first and log each of them.
        result = coderoom(
            tmp_path,
            "serve",
            PORT=str(port),
            DATABASE_URL=f"postgresql://x@127.0.0.1:{free_port()}/x",
            DATABASE_CONNECT_ATTEMPTS="60",
            DATABASE_CONNECT_INTERVAL_SECONDS="1",
        )
    assert result.returncode == 1
    assert problem_lines(result) == [
        f"coderoom: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(another coderoom or another program holds it; stop it or set PORT)"
    ]
    assert "database" not in result.stdout + result.stderr


def test_doctor_names_each_problem_with_its_fix(tmp_path: Path) -> None:
    result = coderoom(
        tmp_path,
        "doctor",
        DATABASE_URL=f"sqlite:///{tmp_path}/empty.sqlite3",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("ok    sandbox") for line in lines), result.stdout
    assert any(line.startswith("ok    runtime python") for line in lines)
    schema = lines.index(next(line for line in lines if line.startswith("FAIL  database schema")))
    assert lines[schema + 1].strip() == "fix: coderoom migrate"
    assert any(line.startswith("FAIL  redis") for line in lines)
    assert lines[-1] == "2 problem(s) found"


def test_doctor_passes_on_a_ready_installation(tmp_path: Path, sqlite_url: str) -> None:
    result = coderoom(tmp_path, "doctor", DATABASE_URL=sqlite_url)
    assert result.returncode == 0, result.stdout
    assert "ok    database" in result.stdout
    assert result.stdout.splitlines()[-1] == "everything needed is in place"
