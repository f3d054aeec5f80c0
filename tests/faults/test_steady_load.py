"""The standing fault suite: a whole deployment (2 APIs, 2 workers, private PostgreSQL and
Redis) under steady load while one fault at a time is injected and healed.

For every fault it asserts: no 5xx other than 503; no accepted execution lost or run twice
(every accepted one ends `succeeded` with its own output, exactly one row per request, none
for a refused one); none stuck past heartbeat + sweep after recovery; recovery without
restarting any process; every log line bounded and free of tokens and program source.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from coderoom import migrations
from coderoom.executions.models import Execution
from coderoom.executions.runner import MAX_ATTEMPTS
from coderoom.infra.db import create_engine, create_sessionmaker
from coderoom.infra.logging import MAX_LINE_BYTES
from tests.conftest import make_settings
from tests.faults.report import record
from tests.support.cluster import Api, PostgresServer, Proc, RedisServer, Worker
from tests.support.server import wait_until

pytestmark = pytest.mark.faults

HEARTBEAT, SWEEP = 2, 1
ENV = {
    "WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "WORKER_SWEEP_SECONDS": str(SWEEP),
    "WORKER_RECONCILE_SECONDS": "1",
    "WORKER_CONCURRENCY": "1",
    "SHUTDOWN_GRACE_SECONDS": "5",
    "DATABASE_POOL_TIMEOUT_SECONDS": "2",
    "EXECUTION_MAX_ACTIVE_PER_USER": "10000",
    "RATE_LIMIT_API": "100000/minute",
    "RATE_LIMIT_AUTH": "100000/minute",
    "RATE_LIMIT_EXECUTION": "100000/minute",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
}


@dataclass
class Deployment:
    tmp: Path
    postgres: PostgresServer
    redis: RedisServer
    env: dict[str, str]
    apis: list[Api] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    retired: list[Proc] = field(default_factory=list)  # stopped by a fault, closed at the end
    token: str = ""

    @property
    def procs(self) -> list[Proc]:
        return [*self.apis, *self.workers]

    def retire(self, proc: Api | Worker) -> None:
        if isinstance(proc, Api):
            self.apis.remove(proc)
        else:
            self.workers.remove(proc)
        self.retired.append(proc)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    postgres = PostgresServer()
    redis = RedisServer(tmp_path)
    migrations.upgrade(make_settings(database_url=postgres.url))
    env = {**ENV, "DATABASE_URL": postgres.url, "REDIS_URL": redis.url}
    setup = Deployment(tmp_path, postgres, redis, env)
    try:
        setup.apis = [Api(f"api-{n}", tmp_path, env) for n in (1, 2)]
        setup.workers = [Worker(f"worker-{n}", tmp_path, env) for n in (1, 2)]
        setup.token = httpx.post(
            f"{setup.apis[0].url}/auth/register",
            json={"email": f"load-{uuid.uuid4().hex[:8]}@example.com", "password": "load-pass-1"},
        ).json()["access_token"]
        yield setup
    finally:
        for proc in [*setup.procs, *setup.retired]:
            proc.stop()
        redis.stop()
        postgres.destroy()


@dataclass
class Sent:
    marker: str
    status: int | None  # None: no answer (connection refused or cut)
    execution_id: str | None


class Load:
    """Steady traffic from a thread: a run request every 50 ms, alternating APIs, each with a
    program that prints a marker of its own; GETs of the last accepted one in between."""

    def __init__(self, setup: Deployment) -> None:
        self.setup = setup
        self.sent: list[Sent] = []
        self.get_statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.setup.token}"}
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                api = self.setup.apis[n % len(self.setup.apis)]
                n += 1
                marker = f"load-{uuid.uuid4().hex}"
                try:
                    response = client.post(
                        f"{api.url}/sandbox/executions",
                        json={"language": "python", "source": f"print('{marker}')"},
                        headers=headers,
                    )
                    accepted = response.status_code in (200, 202)
                    self.sent.append(
                        Sent(
                            marker,
                            response.status_code,
                            response.json()["id"] if accepted else None,
                        )
                    )
                    if accepted:
                        got = client.get(
                            response.headers["location"].replace("/api/v1", api.url),
                            headers=headers,
                        )
                        self.get_statuses.append(got.status_code)
                except httpx.TransportError:
                    self.sent.append(Sent(marker, None, None))
                self._stop.wait(0.05)

    def accepted(self) -> int:
        return sum(1 for s in self.sent if s.status in (200, 202))

    def answered(self, predicate: Callable[[int], bool], since: int = 0) -> bool:
        return any(s.status is not None and predicate(s.status) for s in self.sent[since:])


def _rows(setup: Deployment) -> list[Execution]:
    async def read() -> list[Execution]:
        engine = create_engine(make_settings(database_url=setup.postgres.url))
        try:
            async with create_sessionmaker(engine)() as db:
                return list((await db.execute(select(Execution))).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _check(setup: Deployment, load: Load, fault: str, healed_at: float) -> None:
    statuses = {s.status for s in load.sent} | set(load.get_statuses)
    assert statuses - {None} <= {200, 202, 503}, statuses

    def settled() -> bool:
        try:
            rows = _rows(setup)
        except Exception:
            return False
        return all(row.status not in ("queued", "running") for row in rows)

    # Nothing stuck: the backlog drains and anything orphaned is found within heartbeat +
    # sweep (a few seconds for this small load on two one-sandbox workers).
    wait_until(settled, timeout=60)
    settled_after = time.monotonic() - healed_at
    rows = _rows(setup)
    by_marker: dict[str, list[Execution]] = {}
    for row in rows:
        marker = row.files[0]["content"].split("'")[1]
        by_marker.setdefault(marker, []).append(row)
    for sent in load.sent:
        found = by_marker.get(sent.marker, [])
        if sent.status in (200, 202):  # accepted: exactly one row, run once, right output
            assert len(found) == 1, sent
            assert (found[0].status, found[0].stdout) == ("succeeded", f"{sent.marker}\n"), sent
            assert found[0].attempts <= MAX_ATTEMPTS
        elif sent.status == 503:  # refused: nothing happened
            assert found == [], sent
        else:  # no answer (the API was killed): committed or not, never twice
            assert len(found) <= 1
            assert all(row.status == "succeeded" for row in found)
    # Recovery without restarting anything: a fresh request through each live API runs.
    headers = {"Authorization": f"Bearer {setup.token}"}
    for api in setup.apis:
        if api.alive():
            ran = httpx.post(
                f"{api.url}/sandbox/executions?wait=true",
                json={"language": "python", "source": "print('after')"},
                headers=headers,
                timeout=60,
            )
            assert (ran.status_code, ran.json()["stdout"]) == (200, "after\n")
    for proc in setup.procs:
        text = proc.text()
        assert setup.token not in text
        for line in text.splitlines():
            assert len(line.encode()) <= MAX_LINE_BYTES
            assert "print('load-" not in line
    record(
        fault,
        statuses=sorted(s for s in statuses if s is not None),
        no_answer=sum(1 for s in load.sent if s.status is None),
        refused_503=sum(1 for s in load.sent if s.status == 503),
        accepted=sum(1 for s in load.sent if s.status in (200, 202)),
        settled_after_heal_s=round(settled_after, 2),
    )


STEADY = 20  # accepted runs before the fault, and again after it is healed


def _run_fault(setup: Deployment, fault: str, inject: Callable[[Load], None]) -> None:
    with Load(setup) as load:
        wait_until(lambda: load.accepted() >= STEADY, timeout=60)
        inject(load)
        healed_at = time.monotonic()
        count = load.accepted()
        wait_until(lambda: load.accepted() >= count + STEADY, timeout=90)
    _check(setup, load, fault, healed_at)


def _postgres_stop_start(setup: Deployment, load: Load) -> None:
    setup.postgres.stop()
    count = len(load.sent)
    wait_until(lambda: load.answered(lambda s: s == 503, since=count), timeout=30)
    setup.postgres.start()


def _postgres_fast_restart(setup: Deployment, load: Load) -> None:
    setup.postgres.restart()


def _redis_kill_restart(setup: Deployment, load: Load) -> None:
    setup.redis.restart()  # SIGKILL, no persistence: the queue is gone, the rows are not


def _worker_sigkill(setup: Deployment, load: Load) -> None:
    victim = setup.workers[0]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    setup.retire(victim)


def _worker_sigterm(setup: Deployment, load: Load) -> None:
    victim = setup.workers[0]
    victim.process.send_signal(signal.SIGTERM)
    assert victim.process.wait(timeout=30) == 0
    setup.retire(victim)


def _api_sigkill(setup: Deployment, load: Load) -> None:
    victim = setup.apis[1]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    setup.retire(victim)


def _api_sigterm(setup: Deployment, load: Load) -> None:
    victim = setup.apis[1]
    victim.process.send_signal(signal.SIGTERM)
    assert victim.process.wait(timeout=30) == 0
    setup.retire(victim)


FAULTS: dict[str, Callable[[Deployment, Load], None]] = {
    "PostgreSQL stopped, then started": _postgres_stop_start,
    "PostgreSQL fast restart": _postgres_fast_restart,
    "Redis killed and restarted (no persistence)": _redis_kill_restart,
    "worker SIGKILL (one of two)": _worker_sigkill,
    "worker SIGTERM (one of two)": _worker_sigterm,
    "API SIGKILL (one of two)": _api_sigkill,
    "API SIGTERM (one of two)": _api_sigterm,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_under_steady_load(deployment: Deployment, fault: str) -> None:
    _run_fault(deployment, fault, lambda load: FAULTS[fault](deployment, load))
