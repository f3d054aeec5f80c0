"""Two deployments on one Redis: each REDIS_PREFIX keeps its own queue, limits and workers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from coderoom import migrations
from tests.conftest import make_settings
from tests.support.cluster import Api, Proc, RedisServer, Worker
from tests.support.server import wait_until
from tests.support.services import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.server


@pytest.fixture
def two_deployments(
    tmp_path: Path,
) -> Iterator[tuple[dict[str, str], dict[str, str], RedisServer, list[Proc]]]:
    urls = [create_postgres_database(), create_postgres_database()]
    shared = RedisServer(tmp_path)
    procs: list[Proc] = []
    try:
        for url in urls:
            migrations.upgrade(make_settings(database_url=url))
        common = {
            "REDIS_URL": shared.url,
            "REDIS_PREFIX": "",  # the default: derived from each deployment's database name
            "RATE_LIMIT_AUTH": "2/15minutes",
            "ARGON2_MEMORY_KIB": "1024",
            "ARGON2_TIME_COST": "1",
            "WORKER_CONCURRENCY": "1",
        }
        yield (
            {**common, "DATABASE_URL": urls[0]},
            {**common, "DATABASE_URL": urls[1]},
            shared,
            procs,
        )
    finally:
        for proc in procs:
            proc.stop()
        shared.stop()
        for url in urls:
            drop_postgres_database(url)


def _register(api: Api) -> dict[str, str]:
    body = httpx.post(
        f"{api.url}/auth/register",
        json={"email": f"p-{uuid.uuid4().hex[:8]}@example.com", "password": "prefix-password"},
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def _submit(api: Api, headers: dict[str, str], text: str) -> str:
    response = httpx.post(
        f"{api.url}/sandbox/executions",
        json={"language": "python", "source": f"print({text!r})"},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    eid: str = response.json()["id"]
    return eid


def _execution(api: Api, headers: dict[str, str], eid: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{api.url}/sandbox/executions/{eid}", headers=headers).json()
    return body


def test_two_prefixes_on_one_redis_never_meet(tmp_path: Path, two_deployments: Any) -> None:
    env_a, env_b, shared, procs = two_deployments
    api_a, api_b = Api("api-a", tmp_path, env_a), Api("api-b", tmp_path, env_b)
    procs += [api_a, api_b, Worker("worker-a", tmp_path, env_a)]
    user_a, user_b = _register(api_a), _register(api_b)  # one auth hit each

    waiting = _submit(api_b, user_b, "from b")
    done = _submit(api_a, user_a, "from a")
    wait_until(lambda: _execution(api_a, user_a, done)["status"] == "succeeded")
    # A's worker ran A's job and never touched B's queue.
    assert _execution(api_b, user_b, waiting)["status"] == "queued"
    health_a = httpx.get(f"{api_a.url}/health").json()["services"]["queue"]
    health_b = httpx.get(f"{api_b.url}/health").json()["services"]["queue"]
    assert (health_a["workers"], health_b["workers"]) == (1, 0)
    assert health_b["depth"] == 1

    # Rate limits: spending A's auth budget leaves B's whole.
    spent = [httpx.get(f"{api_a.url}/auth/login").status_code for _ in range(2)]
    fresh = httpx.get(f"{api_b.url}/auth/login").status_code
    assert (spent, fresh) == ([405, 429], 405)

    procs.append(Worker("worker-b", tmp_path, env_b))
    wait_until(lambda: _execution(api_b, user_b, waiting)["status"] == "succeeded", timeout=60)
    assert _execution(api_b, user_b, waiting)["stdout"] == "from b\n"

    prefixes = {env["DATABASE_URL"].rsplit("/", 1)[1] for env in (env_a, env_b)}
    client = redis.Redis.from_url(shared.url)
    try:
        keys = [k.decode() for k in client.scan_iter(count=1000)]
    finally:
        client.close()
    assert keys
    for key in keys:
        if key.startswith("saq:abort:"):
            # SAQ's short-lived abort marker carries the job key alone: the execution's
            # UUID, which no other deployment's database holds.
            uuid.UUID(key.removeprefix("saq:abort:"))
            continue
        owners = {p for p in prefixes if key.startswith(f"{p}:") or f":{p}:" in key}
        assert len(owners) == 1, key
