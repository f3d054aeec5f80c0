"""Start-up checks that explain themselves: one line each, before anything else starts.

`coderoom serve` and `coderoom worker` run these before uvicorn or SAQ start, so an operator
sees `coderoom: cannot reach the database at db:5432/coderoom after 5 attempts: …` instead of
a hundred lines of traceback. Each failure is a `StartupProblem` carrying the process exit
code: 2 for what a person must change (settings, schema, a port held by another program
on purpose), 1 for what may come back by itself (a database or Redis still starting), so
a supervisor can restart on 1 and stop on 2 (see the systemd units'
`RestartPreventExitStatus=2`).
"""

from __future__ import annotations

import asyncio
import errno
import socket

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import URL, make_url

from coderoom.config import Settings
from coderoom.infra.db import DatabaseUnavailable, create_engine, wait_for_database

log = structlog.get_logger(__name__)

CONFIGURATION = 2
UNAVAILABLE = 1


class StartupProblem(Exception):
    """Why the process cannot start, as the one line to print, and its exit code."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def describe_database(url: URL) -> str:
    """Where the database is, without credentials: `host:port/name` or the SQLite file."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def describe_redis(redis_url: str) -> str:
    url = make_url(redis_url.replace("rediss://", "redis://", 1))
    if redis_url.startswith("unix://"):
        return redis_url.split("?", 1)[0].removeprefix("unix://")
    return f"{url.host or 'localhost'}:{url.port or 6379}/{url.database or '0'}"


def check_port_free(host: str, port: int, *, variable: str = "PORT") -> None:
    """Refuse to start when another program listens on the address we are about to bind.

    Binding a throw-away socket with the options uvicorn uses (SO_REUSEADDR) fails exactly
    when uvicorn's own bind would, but now, before any connection or worker is set up.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupProblem(
                    f"cannot listen on {host}:{port}: the address is already in use "
                    f"(another coderoom or another program holds it; stop it or set {variable})",
                    exit_code=UNAVAILABLE,
                ) from None
            reason = exc.strerror or str(exc)
            raise StartupProblem(
                f"cannot listen on {host}:{port}: {reason} (check HOST and {variable})",
                exit_code=CONFIGURATION,
            ) from None


async def reach_database(settings: Settings) -> None:
    """Wait for the database like the server does (attempts, interval), then one line."""
    engine = create_engine(settings)
    try:
        await wait_for_database(
            engine,
            attempts=settings.database_connect_attempts,
            interval=settings.database_connect_interval_seconds,
        )
    except DatabaseUnavailable as exc:
        cause = exc.__cause__
        reason = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        raise StartupProblem(
            f"cannot reach the database at {describe_database(settings.sqlalchemy_url)}: "
            f"database unreachable after {settings.database_connect_attempts} attempts: "
            f"{_one_line(reason)} (check DATABASE_URL and that the server is up)",
            exit_code=UNAVAILABLE,
        ) from None
    finally:
        await engine.dispose()


async def reach_redis(settings: Settings) -> None:
    """Ping REDIS_URL with the database's attempts and interval, then one line."""
    if settings.redis_url is None:
        return
    attempts = settings.database_connect_attempts
    error: Exception | None = None
    for attempt in range(1, attempts + 1):
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            error = exc
            log.warning("redis.connect_failed", attempt=attempt, attempts=attempts, error=str(exc))
        else:
            return
        finally:
            await client.aclose()
        if attempt < attempts:
            await asyncio.sleep(settings.database_connect_interval_seconds)
    raise StartupProblem(
        f"cannot reach Redis at {describe_redis(settings.redis_url)} after {attempts} attempts: "
        f"{type(error).__name__}: {_one_line(str(error))} (check REDIS_URL and that Redis is up)",
        exit_code=UNAVAILABLE,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
