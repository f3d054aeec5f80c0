"""The principal cache: no database round trip for a verified token, prompt revocation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, update

from coderoom.auth.models import User
from coderoom.auth.principal import Principal, PrincipalCache
from coderoom.config import Settings
from tests.conftest import make_settings
from tests.support.app import running_app
from tests.support.factories import PASSWORD, bearer, register, unique_email, user
from tests.support.server import REPO, Server, wait_until
from tests.support.services import REDIS_URL, tcp_reachable, unavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def principal() -> Principal:
    now = datetime.now(UTC)
    return Principal(uuid.uuid4(), "a@example.com", "a", False, now, now)


def test_an_entry_lives_for_the_ttl_and_no_longer() -> None:
    clock = Clock()
    cache = PrincipalCache(5, clock=clock)
    who = principal()
    cache.put_user(who, epoch=cache.epoch)
    clock.now += 4.9
    assert cache.user(who.user_id) == who
    clock.now += 0.2
    assert cache.user(who.user_id) is None


def test_a_load_that_began_before_a_revocation_is_not_cached() -> None:
    cache = PrincipalCache(5)
    epoch = cache.epoch  # a request starts reading the user from the database…
    cache.clear()  # …meanwhile an admin disables them…
    cache.put_user(principal(), epoch=epoch)  # …and the stale answer arrives
    assert cache._users == {}


def test_a_zero_ttl_caches_nothing() -> None:
    cache = PrincipalCache(0)
    who = principal()
    cache.put_user(who, epoch=cache.epoch)
    assert cache.user(who.user_id) is None


def _count_queries(app: FastAPI) -> list[str]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(app.state.coderoom.engine.sync_engine, "before_cursor_execute", record)
    return statements


async def test_a_verified_token_costs_no_database_round_trip(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = await user(client)
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    statements = _count_queries(app)
    for _ in range(5):
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert statements == []


async def _disable_behind_the_cache(app: FastAPI, user_id: str) -> None:
    async with app.state.coderoom.sessionmaker() as db:
        await db.execute(
            update(User).where(User.id == uuid.UUID(user_id)).values(disabled_at=datetime.now(UTC))
        )
        await db.commit()


async def test_the_ttl_bounds_a_change_nobody_announced(settings: Settings) -> None:
    clock = Clock()
    async with running_app(
        make_settings(database_url=settings.database_url, auth_cache_seconds=5)
    ) as (app, c):
        app.state.coderoom.auth.cache.clock = clock
        tokens = await register(c)
        headers = bearer(tokens)
        assert (await c.get("/api/v1/auth/me", headers=headers)).status_code == 200
        await _disable_behind_the_cache(app, tokens["user"]["id"])  # as a CLI without Redis
        clock.now += 4
        still = await c.get("/api/v1/auth/me", headers=headers)
        clock.now += 1.01
        after = await c.get("/api/v1/auth/me", headers=headers)
    assert still.status_code == 200  # within the bound the cache answers…
    assert after.status_code == 401  # …and not a moment past it


async def test_without_a_cache_every_request_asks_the_database(settings: Settings) -> None:
    async with running_app(
        make_settings(database_url=settings.database_url, auth_cache_seconds=0)
    ) as (app, c):
        tokens = await register(c)
        headers = bearer(tokens)
        assert (await c.get("/api/v1/auth/me", headers=headers)).status_code == 200
        await _disable_behind_the_cache(app, tokens["user"]["id"])
        assert (await c.get("/api/v1/auth/me", headers=headers)).status_code == 401


# -- several processes ------------------------------------------------------------------


@pytest.fixture
def two_servers(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    if not tcp_reachable("127.0.0.1", 6379):
        unavailable("Redis", "127.0.0.1:6379 refused")
    env = {
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": f"test-{uuid.uuid4().hex}",
        # Long enough that only the pub/sub announcement can explain a prompt refusal.
        "AUTH_CACHE_SECONDS": "60",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "RATE_LIMIT_AUTH": "1000/minute",
        "RATE_LIMIT_API": "1000/minute",
    }
    servers = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            servers.append(Server(tmp_path / name, sqlite_url, **env))
        for server in servers:
            wait_until(server.ready)
        yield servers[0], servers[1], {**env, "DATABASE_URL": sqlite_url}
    finally:
        for server in servers:
            server.stop()


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    environment.update({"ENVIRONMENT": "test", "PYTHONPATH": str(REPO), **env})
    result = subprocess.run(
        [sys.executable, "-m", "coderoom", *args],
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def _signed_in(server: Server, email: str) -> dict[str, str]:
    body = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}", "X-User-Id": body["user"]["id"]}


def _me(server: Server, headers: dict[str, str]) -> int:
    return httpx.get(f"{server.url}/api/v1/auth/me", headers=headers).status_code


def _refused_within(server: Server, headers: dict[str, str], seconds: float) -> float:
    start = time.monotonic()
    wait_until(lambda: _me(server, headers) == 401, timeout=seconds)
    return time.monotonic() - start


@pytest.mark.server
def test_a_disable_on_one_server_reaches_the_other_at_once(
    two_servers: tuple[Server, Server, dict[str, str]],
) -> None:
    a, b, env = two_servers
    admin_email, victim_email = unique_email("admin"), unique_email("victim")
    _cli(env, "users", "create", "--admin", "--password-stdin", admin_email, stdin=PASSWORD)
    _cli(env, "users", "create", "--password-stdin", victim_email, stdin=PASSWORD)
    admin, victim = _signed_in(a, admin_email), _signed_in(b, victim_email)
    assert _me(b, victim) == 200  # now cached by b for 60 s
    disabled = httpx.post(
        f"{a.url}/api/v1/admin/users/{victim['X-User-Id']}/disable", headers=admin
    )
    assert disabled.status_code == 200
    assert _refused_within(b, victim, seconds=5) < 5


@pytest.mark.server
def test_a_disable_from_the_command_line_reaches_running_servers(
    two_servers: tuple[Server, Server, dict[str, str]],
) -> None:
    _, b, env = two_servers
    email = unique_email("victim")
    _cli(env, "users", "create", "--password-stdin", email, stdin=PASSWORD)
    victim = _signed_in(b, email)
    assert _me(b, victim) == 200
    _cli(env, "users", "disable", email)
    assert _refused_within(b, victim, seconds=5) < 5
