"""Shutdown keeps its promises: requests waiting on a run answer 202 + Location before the
grace period runs out (their run is durable), and the process is gone within the grace."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from pathlib import Path

import httpx
import pytest

from coderoom import migrations
from tests.conftest import make_settings
from tests.faults.report import record
from tests.support.cluster import Api

pytestmark = pytest.mark.faults

GRACE = 4.0
WAITING = 6


async def _waiting_runs(api: Api, headers: dict[str, str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{api.url}/sandbox/executions?wait=true",
                    json={
                        "language": "python",
                        "source": f"import time; time.sleep(20); print({i})",
                        "limits": {"wall_time_ms": 30000},
                    },
                    headers=headers,
                )
                for i in range(WAITING)
            )
        )


def test_sigterm_answers_waiting_requests_202_and_exits_within_the_grace(tmp_path: Path) -> None:
    database = tmp_path / "shutdown.sqlite3"
    url = f"sqlite:///{database}"
    migrations.upgrade(make_settings(database_url=url))
    api = Api(
        "api",
        tmp_path,
        {
            "DATABASE_URL": url,
            "SHUTDOWN_GRACE_SECONDS": str(GRACE),
            "EXECUTION_CONCURRENCY": "2",
            "EXECUTION_MAX_ACTIVE_PER_USER": "50",
            "ARGON2_MEMORY_KIB": "1024",
            "ARGON2_TIME_COST": "1",
            "RATE_LIMIT_EXECUTION": "10000/minute",
        },
    )
    try:
        token = httpx.post(
            f"{api.url}/auth/register",
            json={"email": f"s-{uuid.uuid4().hex[:8]}@example.com", "password": "shutdown-pass-1"},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        async def scenario() -> tuple[list[httpx.Response], float, float]:
            calls = asyncio.ensure_future(_waiting_runs(api, headers))
            deadline = time.monotonic() + 30
            while _count(database, "running") < 2:  # both sandboxes busy, the rest queued
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            while _count(database, None) < WAITING:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            api.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            responses = await calls
            answered = time.monotonic() - signalled
            exit_code = await asyncio.to_thread(api.process.wait, 60)
            assert exit_code == 0, api.text()
            return responses, answered, time.monotonic() - signalled

        responses, answered, exited = asyncio.run(scenario())
    finally:
        api.stop()
    assert [r.status_code for r in responses] == [202] * WAITING, [r.text for r in responses]
    for response in responses:
        assert response.headers["location"] == f"/api/v1/sandbox/executions/{response.json()['id']}"
    assert answered < GRACE
    assert exited < GRACE + 1.5, api.text()
    # Durable: every run is still waiting in the database, to run at the next start.
    assert _count(database, "queued") == WAITING
    record(
        "API SIGTERM with ?wait=true requests in flight (embedded)",
        statuses=sorted({r.status_code for r in responses}),
        answered_s=round(answered, 2),
        exited_s=round(exited, 2),
        grace_s=GRACE,
    )


def _count(database: Path, status: str | None) -> int:
    with sqlite3.connect(database) as connection:
        if status is None:
            row = connection.execute("SELECT count(*) FROM executions").fetchone()
        else:
            row = connection.execute(
                "SELECT count(*) FROM executions WHERE status = ?", (status,)
            ).fetchone()
    return int(row[0])
