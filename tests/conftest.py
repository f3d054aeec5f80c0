"""Shared fixtures: settings, a migrated database per backend, the app and an HTTP client.

Database tests run twice, on the embedded SQLite file and on a real PostgreSQL database made
for this run. The schema is migrated once per backend; each test leaves empty tables behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from coderoom import migrations
from coderoom.api import create_app
from coderoom.api.state import AppState
from coderoom.config import Settings
from tests.support.services import REDIS_PREFIX, create_postgres_database, drop_postgres_database


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": "sqlite+aiosqlite:///:memory:",
        "database_connect_attempts": 1,
        "database_connect_interval_seconds": 0,
        "log_format": "console",
        "redis_prefix": REDIS_PREFIX,
        # Cheap hashes and roomy limits keep the suite fast; the tests of those features
        # set their own values.
        "argon2_memory_kib": 1024,
        "argon2_time_cost": 1,
        "rate_limit_api": "10000/minute",
        "rate_limit_auth": "10000/minute",
        "rate_limit_execution": "10000/minute",
        "rate_limit_session": "10000/minute",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "coderoom.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    migrations.upgrade(make_settings(database_url=url))
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = create_postgres_database()
    try:
        migrations.upgrade(make_settings(database_url=url))
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated database on each backend in turn."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url)


async def _empty_tables(state: AppState) -> None:
    metadata = migrations.target_metadata()
    async with state.sessionmaker() as session:
        for table in reversed(metadata.sorted_tables):
            await session.execute(delete(table))
        await session.commit()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        await _empty_tables(application.state.coderoom)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
