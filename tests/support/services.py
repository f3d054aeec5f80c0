"""Reaching the real PostgreSQL and Redis the suite runs against.

On a developer machine without them the tests that need them skip with the reason; under
CI (`CI` set) a missing service fails the run instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import NoReturn

import asyncpg
import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: This run's REDIS_PREFIX: the suite never shares queue or rate-limit names with a running
#: coderoom (or another run of the suite) on the same Redis.
REDIS_PREFIX = f"test-{uuid.uuid4().hex[:12]}"


def unavailable(what: str, why: str) -> NoReturn:
    message = f"{what} is not reachable ({why})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


def tcp_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_postgres_database() -> str:
    """A fresh, empty database; returns its SQLAlchemy URL (plain postgresql:// form)."""
    name = f"coderoom_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", f"{type(exc).__name__}: {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
