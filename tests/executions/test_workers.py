"""Scale-out: API instances and workers as real processes over one Redis and PostgreSQL,
and the faults they must survive."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from coderoom import migrations
from coderoom.executions.models import Execution
from coderoom.infra.db import create_engine, create_sessionmaker
from tests.conftest import make_settings
from tests.sandbox.test_escape import host_processes_with
from tests.support.cluster import Api, Proc, RedisServer, Worker
from tests.support.server import wait_until
from tests.support.services import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.server


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[dict[str, str], RedisServer, list[Proc]]]:
    url = create_postgres_database()
    redis = RedisServer(tmp_path)
    procs: list[Proc] = []
    try:
        migrations.upgrade(make_settings(database_url=url))
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": redis.url,
            "WORKER_HEARTBEAT_SECONDS": "2",
            "WORKER_SWEEP_SECONDS": "1",
            "WORKER_RECONCILE_SECONDS": "1",
            "WORKER_CONCURRENCY": "2",
            "SHUTDOWN_GRACE_SECONDS": "20",
            "RATE_LIMIT_API": "10000/minute",
            "RATE_LIMIT_AUTH": "10000/minute",
            "RATE_LIMIT_EXECUTION": "10000/minute",
            "ARGON2_MEMORY_KIB": "1024",
            "ARGON2_TIME_COST": "1",
            "EXECUTION_MAX_ACTIVE_PER_USER": "50",
        }
        yield env, redis, procs
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()
        drop_postgres_database(url)


def token(api: Api) -> dict[str, str]:
    body = httpx.post(
        f"{api.url}/auth/register",
        json={"email": f"w-{uuid.uuid4().hex[:8]}@example.com", "password": "worker-test-password"},
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def submit(
    api: Api, headers: dict[str, str], source: str, *, wait: bool = False, language: str = "python"
) -> dict[str, Any]:
    response = httpx.post(
        f"{api.url}/sandbox/executions" + ("?wait=true" if wait else ""),
        json={"language": language, "source": source, "limits": {"wall_time_ms": 30000}},
        headers=headers,
        timeout=60,
    )
    assert response.status_code in (200, 202), response.text
    body: dict[str, Any] = response.json()
    return body


def status_of(api: Api, headers: dict[str, str], eid: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{api.url}/sandbox/executions/{eid}", headers=headers).json()
    return body


def until_status(
    api: Api, headers: dict[str, str], eid: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def reached() -> bool:
        result.update(status_of(api, headers, eid))
        return result["status"] in statuses

    wait_until(reached, timeout=timeout)
    return result


def attempts(database_url: str, eid: str) -> int:
    async def read() -> int:
        engine = create_engine(make_settings(database_url=database_url))
        try:
            async with create_sessionmaker(engine)() as db:
                row = (
                    await db.execute(select(Execution).where(Execution.id == uuid.UUID(eid)))
                ).scalar_one()
                return row.attempts
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_two_apis_and_two_workers_share_the_work(tmp_path: Path, cluster: Any) -> None:
    env, _, procs = cluster
    apis = [Api("api-a", tmp_path, env), Api("api-b", tmp_path, env)]
    procs.extend(apis)
    procs.extend([Worker("worker-1", tmp_path, env), Worker("worker-2", tmp_path, env)])
    headers = token(apis[0])
    results = [submit(apis[i % 2], headers, f"print({i} * 2)", wait=True) for i in range(6)]
    assert [r["status"] for r in results] == ["succeeded"] * 6
    assert [r["stdout"] for r in results] == [f"{i * 2}\n" for i in range(6)]
    health = httpx.get(f"{apis[1].url}/health").json()
    assert health["services"]["queue"]["workers"] == 2
    assert all(attempts(env["DATABASE_URL"], r["id"]) == 1 for r in results)


def test_cancel_reaches_the_worker_and_kills_the_program(tmp_path: Path, cluster: Any) -> None:
    env, _, procs = cluster
    api = Api("api", tmp_path, env)
    procs.extend([api, Worker("worker", tmp_path, env)])
    headers = token(api)
    marker = f"cancel-me-{uuid.uuid4().hex[:8]}"
    eid = submit(api, headers, f"exec -a {marker} sleep 25", language="bash")["id"]
    until_status(api, headers, eid, {"running"})
    wait_until(lambda: bool(host_processes_with(marker)))
    cancelled = httpx.post(f"{api.url}/sandbox/executions/{eid}/cancel", headers=headers).json()
    assert cancelled["status"] == "cancelled"
    wait_until(lambda: not host_processes_with(marker), timeout=15)


def test_a_killed_worker_s_execution_is_rerun_by_another(tmp_path: Path, cluster: Any) -> None:
    env, _, procs = cluster
    api = Api("api", tmp_path, env)
    first = Worker("worker-1", tmp_path, env)
    procs.extend([api, first])
    headers = token(api)
    eid = submit(api, headers, "import time; time.sleep(3); print('done')")["id"]
    until_status(api, headers, eid, {"running"})
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    procs.append(Worker("worker-2", tmp_path, env))
    final = until_status(api, headers, eid, {"succeeded", "failed", "internal_error"}, timeout=90)
    assert final["status"] == "succeeded"
    assert final["stdout"] == "done\n"
    assert attempts(env["DATABASE_URL"], eid) == 2


def test_sigterm_lets_running_work_finish_then_exits(tmp_path: Path, cluster: Any) -> None:
    env, _, procs = cluster
    api = Api("api", tmp_path, env)
    worker = Worker("worker", tmp_path, env)
    procs.extend([api, worker])
    headers = token(api)
    eid = submit(api, headers, "import time; time.sleep(2); print('finished')")["id"]
    until_status(api, headers, eid, {"running"})
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=60) == 0
    final = status_of(api, headers, eid)
    assert (final["status"], final["stdout"]) == ("succeeded", "finished\n")
    assert "worker.stopped" in worker.text()


def test_executions_queued_when_redis_restarts_are_not_lost(tmp_path: Path, cluster: Any) -> None:
    env, redis, procs = cluster
    api = Api("api", tmp_path, env)
    procs.append(api)
    headers = token(api)
    ids = [submit(api, headers, f"print('kept {i}')")["id"] for i in range(3)]
    redis.restart()  # no persistence: the queue is gone, the rows are not
    procs.append(Worker("worker", tmp_path, env))
    for i, eid in enumerate(ids):
        final = until_status(
            api, headers, eid, {"succeeded", "failed", "internal_error"}, timeout=60
        )
        assert (final["status"], final["stdout"]) == ("succeeded", f"kept {i}\n")
    after = submit(api, headers, "print('after restart')", wait=True)
    assert after["stdout"] == "after restart\n"


def test_health_is_degraded_without_a_live_worker(tmp_path: Path, cluster: Any) -> None:
    env, _, procs = cluster
    api = Api("api", tmp_path, env)
    procs.append(api)
    response = httpx.get(f"{api.url}/health")
    assert response.status_code == 503
    assert response.json()["services"]["queue"]["error"] == "no live worker"
    procs.append(Worker("worker", tmp_path, env))
    wait_until(lambda: httpx.get(f"{api.url}/health").status_code == 200, timeout=30)


def test_one_execution_never_runs_twice_at_once(tmp_path: Path, cluster: Any) -> None:
    env, _, procs = cluster
    api = Api("api", tmp_path, env)
    procs.extend([api, Worker("worker-1", tmp_path, env), Worker("worker-2", tmp_path, env)])
    headers = token(api)
    eid = submit(api, headers, "import time; time.sleep(1); print('once')")["id"]

    async def duplicate() -> None:
        from coderoom.executions.tasks import RUN_JOB
        from coderoom.infra.keys import RedisNames
        from coderoom.infra.queue import make_queue, make_redis

        queue = make_queue(
            make_redis(env["REDIS_URL"]),
            RedisNames.of(make_settings(database_url=env["DATABASE_URL"])),
        )
        await queue.connect()
        for copy in range(3):  # the same execution delivered again under other job keys
            await queue.enqueue(RUN_JOB, key=f"{eid}-copy-{copy}", execution_id=eid, timeout=60)
        await queue.disconnect()

    asyncio.run(duplicate())
    final = until_status(api, headers, eid, {"succeeded", "failed", "internal_error"})
    assert (final["status"], final["stdout"]) == ("succeeded", "once\n")
    assert attempts(env["DATABASE_URL"], eid) == 1
