"""End to end: the cost of each layer between a request and the sandbox, side by side.

    (a) bare `bwrap … python3 -c 'print(1)'` spawn
    (b) the engine alone (Engine.run)
    (c) the HTTP API with ?wait=true, embedded mode (SQLite, in-process pool): auth, limiter,
        rows, queue, sandbox — a real `coderoom serve` process over loopback
    (d) the same with PostgreSQL + Redis + one `coderoom worker` process

For each: sequential p50/p95 over --runs runs, and throughput for --burst requests at
concurrency 8; ratios to (a). Then a backlog: --backlog executions queued at once, drained
by one worker and by two.

    .venv/bin/python bench/e2e.py [--runs 50] [--burst 200] [--backlog 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx

from coderoom.infra.logging import configure_logging
from coderoom.sandbox import Engine, Program
from coderoom.sandbox.bwrap import _root_layout

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BARE = [
    "bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
    "--unshare-uts", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
    *_root_layout(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/work", "--chdir", "/work",
    "--", "/usr/bin/python3", "-c", "print(1)",
]  # fmt: skip
COMMON_ENV = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_ENABLED": "false",
    "EXECUTION_MAX_ACTIVE_PER_USER": "100000",
    "QUEUE_MAX_DEPTH": "100000",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    full.update(COMMON_ENV | env)
    return subprocess.Popen(
        [sys.executable, "-m", "coderoom", *args],
        env=full,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_http(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            try:
                if (await client.get(url)).status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


async def bare() -> None:
    process = await asyncio.create_subprocess_exec(*BARE, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert out == b"1\n"


def api_runner(
    client: httpx.AsyncClient, base: str, headers: dict[str, str]
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        response = await client.post(
            f"{base}/sandbox/executions?wait=true",
            json={"language": "python", "source": "print(1)"},
            headers=headers,
        )
        assert response.status_code == 200 and response.json()["stdout"] == "1\n", response.text

    return run


async def sequential(fn: Callable[[], Awaitable[None]], runs: int) -> tuple[float, float]:
    for _ in range(3):
        await fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000


async def burst(fn: Callable[[], Awaitable[None]], total: int, concurrency: int = 8) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def lane() -> None:
        while not queue.empty():
            queue.get_nowait()
            await fn()

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


async def register(base: str) -> dict[str, str]:
    async with httpx.AsyncClient() as client:
        body = (
            await client.post(
                f"{base}/auth/register",
                json={
                    "email": f"b-{uuid.uuid4().hex[:8]}@example.com",
                    "password": "bench-password-1",
                },
            )
        ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


async def drain(base: str, headers: dict[str, str], count: int) -> float:
    """Queue `count` executions at once and time until every one has finished."""
    async with httpx.AsyncClient(timeout=60) as client:
        start = time.perf_counter()
        ids = []
        for _ in range(count):
            response = await client.post(
                f"{base}/sandbox/executions",
                json={"language": "python", "source": "print(1)"},
                headers=headers,
            )
            ids.append(response.json()["id"])
        pending = set(ids)
        while pending:
            for eid in list(pending):
                body = (
                    await client.get(f"{base}/sandbox/executions/{eid}", headers=headers)
                ).json()
                if body["status"] not in ("queued", "running"):
                    pending.discard(eid)
            if pending:
                await asyncio.sleep(0.05)
        return time.perf_counter() - start


async def main(runs: int, total: int, backlog: int) -> None:
    configure_logging("WARNING", "console")
    rows: dict[str, tuple[float, float, float]] = {}
    rows["(a) bare bwrap"] = (*await sequential(bare, runs), await burst(bare, total))
    engine = Engine()
    engine.check()

    async def engine_run() -> None:
        result = await engine.run("python", Program.single("main.py", "print(1)"))
        assert result.stdout == "1\n"

    rows["(b) engine"] = (*await sequential(engine_run, runs), await burst(engine_run, total))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # (c) embedded
        db = work / "bench.sqlite3"
        env_c = {"DATABASE_URL": f"sqlite:///{db}", "PORT": str(free_port()), "HOST": "127.0.0.1"}
        subprocess.run(
            [sys.executable, "-m", "coderoom", "migrate"],
            env={**os.environ, **COMMON_ENV, **env_c},
            cwd=work,
            check=True,
            capture_output=True,
        )
        server = spawn(["serve"], env_c, work)
        base = f"http://127.0.0.1:{env_c['PORT']}/api/v1"
        try:
            await wait_http(f"{base}/health/live")
            headers = await register(base)
            async with httpx.AsyncClient(timeout=60) as client:
                run = api_runner(client, base, headers)
                rows["(c) API embedded"] = (*await sequential(run, runs), await burst(run, total))
        finally:
            server.terminate()
            server.wait()

        # (d) PostgreSQL + Redis + worker
        name = f"coderoom_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        redis_port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        env_d = {
            "DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{name}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "PORT": str(free_port()),
            "HOST": "127.0.0.1",
        }
        procs = []
        try:
            subprocess.run(
                [sys.executable, "-m", "coderoom", "migrate"],
                env={**os.environ, **COMMON_ENV, **env_d},
                cwd=work,
                check=True,
                capture_output=True,
            )
            procs.append(spawn(["serve"], env_d, work))
            procs.append(spawn(["worker"], env_d, work))
            base = f"http://127.0.0.1:{env_d['PORT']}/api/v1"
            await wait_http(f"{base}/health/live")
            async with httpx.AsyncClient() as client:
                for _ in range(300):
                    if (
                        (await client.get(f"{base}/health"))
                        .json()["services"]["queue"]
                        .get("workers")
                    ):
                        break
                    await asyncio.sleep(0.1)
            headers = await register(base)
            async with httpx.AsyncClient(timeout=60) as client:
                run = api_runner(client, base, headers)
                rows["(d) API + Redis + worker"] = (
                    *await sequential(run, runs),
                    await burst(run, total),
                )
            drains = {}
            if backlog:
                drains["1 worker"] = await drain(base, headers, backlog)
                procs.append(spawn(["worker"], env_d, work))
                async with httpx.AsyncClient() as client:
                    for _ in range(300):
                        if (await client.get(f"{base}/health")).json()["services"]["queue"].get(
                            "workers", 0
                        ) >= 2:
                            break
                        await asyncio.sleep(0.1)
                drains["2 workers"] = await drain(base, headers, backlog)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
            redis.terminate()
            redis.wait()
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()

    a50, _, a_rps = rows["(a) bare bwrap"]
    print(
        f"python hello world; sequential runs: {runs}; burst: {total} at concurrency 8; {os.cpu_count()} CPUs"
    )
    print(f"{'':28}{'p50 ms':>9}{'p95 ms':>9}{'x (a)':>8}{'req/s':>9}{'% of (a)':>10}")
    for label, (p50, p95, rps) in rows.items():
        print(f"{label:28}{p50:9.1f}{p95:9.1f}{p50 / a50:8.2f}{rps:9.1f}{100 * rps / a_rps:9.0f}%")
    for label, seconds in drains.items():
        print(
            f"backlog of {backlog}, {label}: {seconds:.1f} s ({1000 * seconds / backlog:.1f} ms per execution)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.burst, args.backlog))
