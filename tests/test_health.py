"""Health routes: real database and Redis, up and down."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from coderoom import __version__, migrations
from tests.conftest import make_settings
from tests.support.app import running
from tests.support.services import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    tcp_reachable,
    unavailable,
)


async def test_health_reports_database_up_and_redis_disabled(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["environment"] == "test"
    assert body["uptime_seconds"] >= 0
    assert body["services"]["database"]["status"] == "up"
    assert body["services"]["database"]["latency_ms"] >= 0
    assert body["services"]["redis"]["status"] == "disabled"


async def test_live_touches_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_runs_the_same_checks(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/health/ready")).json()
    assert body["services"]["database"]["status"] == "up"


async def test_redis_up_is_reported(sqlite_url: str) -> None:
    if not tcp_reachable("127.0.0.1", 6379):
        unavailable("Redis", "127.0.0.1:6379 refused")
    settings = make_settings(database_url=sqlite_url, redis_url=REDIS_URL, run_worker=True)
    async with running(settings) as c:
        body = (await c.get("/api/v1/health")).json()
        deadline = asyncio.get_running_loop().time() + 30
        while body["services"]["queue"].get("workers", 0) < 1:  # the worker registers itself
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.1)
            body = (await c.get("/api/v1/health")).json()
    assert body["services"]["redis"]["status"] == "up"
    assert body["services"]["queue"]["status"] == "up"
    assert body["status"] == "ok"


async def test_redis_without_a_live_worker_is_degraded(sqlite_url: str) -> None:
    if not tcp_reachable("127.0.0.1", 6379):
        unavailable("Redis", "127.0.0.1:6379 refused")
    # A prefix of its own: workers other tests started on this Redis are not its workers.
    settings = make_settings(
        database_url=sqlite_url, redis_url=REDIS_URL, redis_prefix=f"test-{uuid.uuid4().hex}"
    )
    async with running(settings) as c:
        response = await c.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["services"]["queue"] == {
        "status": "down",
        "mode": "queue",
        "depth": 0,
        "workers": 0,
        "error": "no live worker",
    }


async def test_redis_down_degrades_health_to_503(sqlite_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with running(make_settings(database_url=sqlite_url, redis_url=dead)) as c:
        response = await c.get("/api/v1/health")
        ready = await c.get("/api/v1/health/ready")
        live = await c.get("/api/v1/health/live")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["redis"]["status"] == "down"
    assert response.json()["services"]["database"]["status"] == "up"
    assert ready.status_code == 503
    assert live.status_code == 200


async def test_database_lost_after_start_degrades_health_to_503() -> None:
    url = await asyncio.to_thread(create_postgres_database)
    await asyncio.to_thread(migrations.upgrade, make_settings(database_url=url))
    try:
        async with running(make_settings(database_url=url)) as c:
            assert (await c.get("/api/v1/health")).status_code == 200
            name = url.rsplit("/", 1)[1]
            admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
            try:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            finally:
                await admin.close()
            response = await c.get("/api/v1/health")
    finally:
        await asyncio.to_thread(drop_postgres_database, url)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["services"]["database"]["status"] == "down"


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/health/ready"])
async def test_hung_service_times_out_quickly(sqlite_url: str, path: str) -> None:
    """A Redis that accepts connections but never answers must not hang the probe."""
    writers: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = make_settings(
        database_url=sqlite_url,
        redis_url=f"redis://127.0.0.1:{port}/0",
        health_probe_timeout_seconds=0.2,
    )
    try:
        async with running(settings) as c:
            response = await asyncio.wait_for(c.get(path), timeout=10)
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    assert response.status_code == 503
    assert response.json()["services"]["redis"]["status"] == "down"
