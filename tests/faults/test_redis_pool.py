"""Redis connections stay within REDIS_MAX_CONNECTIONS per client under saturation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from coderoom import migrations
from tests.conftest import make_settings
from tests.faults.report import record
from tests.support.cluster import Api, Proc, RedisServer, Worker
from tests.support.services import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.faults

CAP = 6
REQUESTS = 48


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], RedisServer, list[Proc]]]:
    url = create_postgres_database()
    redis = RedisServer(tmp_path)
    procs: list[Proc] = []
    try:
        migrations.upgrade(make_settings(database_url=url))
        yield (
            {
                "DATABASE_URL": url,
                "REDIS_URL": redis.url,
                "REDIS_MAX_CONNECTIONS": str(CAP),
                "WORKER_CONCURRENCY": "2",
                "EXECUTION_MAX_ACTIVE_PER_USER": "1000",
                "RATE_LIMIT_API": "10000/minute",
                "RATE_LIMIT_AUTH": "10000/minute",
                "RATE_LIMIT_EXECUTION": "10000/minute",
                "ARGON2_MEMORY_KIB": "1024",
                "ARGON2_TIME_COST": "1",
            },
            redis,
            procs,
        )
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()
        drop_postgres_database(url)


def test_connections_stay_under_the_cap_at_saturation(tmp_path: Path, stack: Any) -> None:
    env, redis, procs = stack
    api = Api("api", tmp_path, env)
    procs.extend([api, Worker("worker", tmp_path, env)])
    token = httpx.post(
        f"{api.url}/auth/register",
        json={"email": f"p-{uuid.uuid4().hex[:8]}@example.com", "password": "pool-test-pass"},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    async def scenario() -> tuple[list[int], int, int]:
        monitor = Redis.from_url(redis.url)
        peak = 0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, int((await monitor.info("clients"))["connected_clients"]))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        async with httpx.AsyncClient(timeout=120) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"{api.url}/sandbox/executions" + ("?wait=true" if i % 2 else ""),
                        json={"language": "python", "source": f"print({i})"},
                        headers=headers,
                    )
                    for i in range(REQUESTS)
                )
            )
        done.set()
        await watcher
        after = int((await monitor.info("clients"))["connected_clients"])
        await monitor.aclose()
        return [r.status_code for r in responses], peak, after

    statuses, peak, after = asyncio.run(scenario())
    assert set(statuses) <= {200, 202}, statuses
    # API: queue client + rate limiter client; worker: queue client; and our monitor.
    limit = 3 * CAP + 1
    assert peak <= limit, (peak, limit)
    assert after <= limit
    record("Redis at saturation", statuses=sorted(set(statuses)), peak_clients=peak, cap=limit)
