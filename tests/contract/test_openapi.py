"""The OpenAPI document is the truth: schemathesis against a real `coderoom serve`.

`st run --checks all` with a fixed seed and a bounded number of cases per operation, signed
in as an admin (so the admin routes are exercised too, not only their 403), against a
server on its own PostgreSQL database. Zero failures pass. The relaxations, each with its
reason, are in tests/contract/schemathesis.toml; none disables a check outright.

Why these settings:
- `--phases examples,coverage,fuzzing`: stateful testing follows links between operations;
  the document declares none (yet), so the phase would only add a warning.
- `--generation-database none`: a run must not depend on what an earlier run found.
- `--workers 1` and a fixed `--seed`: the same cases every time, whatever the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coderoom import migrations
from coderoom.config import Settings
from tests.support.server import CODEROOM_SERVE, Server, wait_until
from tests.support.services import create_postgres_database, drop_postgres_database

pytestmark = [pytest.mark.server, pytest.mark.contract]

HERE = Path(__file__).resolve().parent
ST = Path(sys.executable).parent / "st"
SEED = "20261204"
EXAMPLES_PER_OPERATION = "40"
ADMIN = {"email": "contract@example.com", "password": "a long and unusual passphrase"}
QUIET = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "WARNING",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
    "RATE_LIMIT_API": "1000000/minute",
    "RATE_LIMIT_AUTH": "1000000/minute",
    "RATE_LIMIT_EXECUTION": "1000000/minute",
    "RATE_LIMIT_SESSION": "1000000/minute",
    "EXECUTION_WAIT_SECONDS": "2",
    # A session's event stream is open until it idles; end it within the request timeout.
    "STREAM_IDLE_SECONDS": "2",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    url = create_postgres_database()
    try:
        migrations.upgrade(Settings(_env_file=None, environment="test", database_url=url))
        running = Server(tmp_path, url, argv=CODEROOM_SERVE, **QUIET)
        try:
            wait_until(running.ready, timeout=60)
            yield running
        finally:
            running.stop()
    finally:
        drop_postgres_database(url)


def admin_token(server: Server) -> str:
    api = f"{server.url}/api/v1"
    assert httpx.post(f"{api}/auth/register", json=ADMIN).status_code == 201
    environment = {**os.environ, **QUIET, "DATABASE_URL": server.database_url}
    subprocess.run(
        [*CODEROOM_SERVE[:-1], "users", "promote", ADMIN["email"]],
        env=environment,
        check=True,
        capture_output=True,
    )
    token: str = httpx.post(f"{api}/auth/login", json=ADMIN).json()["access_token"]
    return token


def test_schemathesis_finds_no_failure_with_every_check(server: Server, tmp_path: Path) -> None:
    token = admin_token(server)
    result = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--seed",
            SEED,
            "--max-examples",
            EXAMPLES_PER_OPERATION,
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
