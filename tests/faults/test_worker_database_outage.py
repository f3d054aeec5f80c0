"""Workers ride out a database outage: they back off instead of burning the queue's retries,
and nothing stays `running` past heartbeat + sweep once the database is back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coderoom import migrations
from tests.conftest import make_settings
from tests.faults.report import record
from tests.support.cluster import Api, PostgresServer, Proc, RedisServer, Worker
from tests.support.server import wait_until

pytestmark = pytest.mark.faults

HEARTBEAT, SWEEP = 2, 1


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], PostgresServer, list[Proc]]]:
    postgres = PostgresServer()
    redis = RedisServer(tmp_path)
    procs: list[Proc] = []
    try:
        migrations.upgrade(make_settings(database_url=postgres.url))
        env = {
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT),
            "WORKER_SWEEP_SECONDS": str(SWEEP),
            "WORKER_RECONCILE_SECONDS": "1",
            "WORKER_CONCURRENCY": "2",
            "DATABASE_POOL_TIMEOUT_SECONDS": "2",
            "RATE_LIMIT_API": "10000/minute",
            "RATE_LIMIT_AUTH": "10000/minute",
            "RATE_LIMIT_EXECUTION": "10000/minute",
            "ARGON2_MEMORY_KIB": "1024",
            "ARGON2_TIME_COST": "1",
            "EXECUTION_MAX_ACTIVE_PER_USER": "50",
        }
        yield env, postgres, procs
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()
        postgres.destroy()


def _statuses(api: Api, headers: dict[str, str], ids: list[str]) -> dict[str, Any]:
    with httpx.Client(timeout=10) as client:
        return {
            eid: client.get(f"{api.url}/sandbox/executions/{eid}", headers=headers).json()
            for eid in ids
        }


def test_a_database_outage_delays_runs_but_leaves_none_stuck(tmp_path: Path, stack: Any) -> None:
    env, postgres, procs = stack
    api = Api("api", tmp_path, env)
    worker = Worker("worker", tmp_path, env)
    procs.extend([api, worker])
    headers = {
        "Authorization": "Bearer "
        + httpx.post(
            f"{api.url}/auth/register",
            json={"email": f"o-{uuid.uuid4().hex[:8]}@example.com", "password": "outage-pass-1"},
        ).json()["access_token"]
    }
    ids = [
        httpx.post(
            f"{api.url}/sandbox/executions",
            json={"language": "python", "source": f"import time; time.sleep(1); print({i})"},
            headers=headers,
        ).json()["id"]
        for i in range(8)
    ]
    wait_until(lambda: any(e["status"] == "running" for e in _statuses(api, headers, ids).values()))
    postgres.stop()
    # The outage lasts until the worker has hit it (claims and result stores both fail).
    wait_until(lambda: worker.text().count("execution.database_unavailable") >= 2, timeout=30)
    postgres.start()
    back = time.monotonic()

    def all_done() -> bool:
        try:
            statuses = _statuses(api, headers, ids)
        except (httpx.HTTPError, ValueError):
            return False
        return all(e.get("status") not in (None, "queued", "running") for e in statuses.values())

    # Eight 1-second runs on two sandboxes, plus heartbeat + sweep for anything orphaned.
    wait_until(all_done, timeout=8 / 2 * 1.5 + HEARTBEAT + SWEEP + 15)
    recovered_in = time.monotonic() - back
    final = _statuses(api, headers, ids)
    assert [final[eid]["status"] for eid in ids] == ["succeeded"] * len(ids)
    assert [final[eid]["stdout"] for eid in ids] == [f"{i}\n" for i in range(len(ids))]
    assert "Error processing job" not in worker.text()  # no retries burnt while it was down
    assert recovered_in < 30
    record(
        "PostgreSQL stopped under a worker's backlog",
        statuses=sorted({e["status"] for e in final.values()}),
        all_done_after_restart_s=round(recovered_in, 2),
    )
