"""End to end: the cost of each layer between a request and the sandbox, side by side.

    (a) bare `python3 -c 'print(1)'`
    (b) the bwrap floor: `bwrap … python3 -c 'print(1)'` with our namespaces, no limits
    (c) the engine alone (Engine.run)
    (d) the HTTP API with ?wait=true, embedded mode (SQLite, in-process pool): auth,
        limiter, rows, sandbox — a real `coderoom serve` process over loopback
    (e) the same with PostgreSQL + Redis + one `coderoom worker` process

For each: sequential p50/p95 over --runs runs, throughput for --burst requests at
concurrency 8 and 32, ratios to the floor (b). For (c)-(e) also the host CPU per execution
outside the sandboxed program: the user + system CPU of the processes that serve it (the
bench process for (c); the API, and the worker for (e)) from /proc/<pid>/stat, not
counting their children (the sandboxes), over the concurrency-8 burst. For (d) and (e):
the API's event-loop lag while 8 executions run (a probe task in the server, bench/lagapp.py)
and the drain time of a --backlog execution backlog queued at once.

    .venv/bin/python bench/e2e.py [--runs 50] [--burst 200] [--backlog 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from coderoom.bootstrap import sandbox_engine
from coderoom.config import Settings
from coderoom.infra.logging import configure_logging
from coderoom.sandbox import Program
from coderoom.sandbox.bwrap import root_layout

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BARE = ["/usr/bin/python3", "-c", "print(1)"]
FLOOR = [
    "bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
    "--unshare-uts", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
    *root_layout(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/work", "--chdir", "/work",
    "--", *BARE,
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
SERVE = (
    "from coderoom.cli.serve import run_server; from coderoom.config import Settings; "
    "run_server(Settings(), factory='lagapp:create')"
)
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    p50: float = 0.0
    p95: float = 0.0
    rps8: float = 0.0
    rps32: float = 0.0
    cpu_ms: float | None = None  # host CPU per execution outside the sandboxed program
    lag: dict[str, float] = field(default_factory=dict)
    drain_s: float | None = None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_cpu_seconds(pid: int) -> float:
    """utime + stime of the process itself, children excluded."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    full.update(COMMON_ENV | env | {"PYTHONPATH": str(REPO / "bench")})
    return subprocess.Popen(
        args, env=full, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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


def command(argv: list[str]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        assert out == b"1\n"

    return run


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


async def burst(fn: Callable[[], Awaitable[None]], total: int, concurrency: int) -> float:
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


async def measure(
    fn: Callable[[], Awaitable[None]],
    runs: int,
    total: int,
    cpu: Callable[[], float] | None = None,
    lag_url: str | None = None,
) -> Row:
    row = Row()
    row.p50, row.p95 = await sequential(fn, runs)
    if lag_url:
        async with httpx.AsyncClient() as client:
            await client.get(lag_url)  # reset the probe's samples
    before = cpu() if cpu else 0.0
    row.rps8 = await burst(fn, total, 8)
    if cpu:
        row.cpu_ms = (cpu() - before) * 1000 / total
    if lag_url:
        async with httpx.AsyncClient() as client:
            row.lag = (await client.get(lag_url)).json()
    row.rps32 = await burst(fn, total, 32)
    return row


async def register(base: str) -> dict[str, str]:
    async with httpx.AsyncClient() as client:
        body = (
            await client.post(
                f"{base}/auth/register",
                json={"email": f"b-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-pass-1"},
            )
        ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


async def drain(base: str, headers: dict[str, str], count: int) -> float:
    """Queue `count` executions at once and time until every one has finished."""
    async with httpx.AsyncClient(timeout=120) as client:
        start = time.perf_counter()
        ids: list[str] = []

        async def submit(n: int) -> None:
            for _ in range(n):
                response = await client.post(
                    f"{base}/sandbox/executions",
                    json={"language": "python", "source": "print(1)"},
                    headers=headers,
                )
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])

        await asyncio.gather(*(submit(count // 8) for _ in range(8)))
        for eid in ids:  # roughly FIFO: wait on each in turn
            while True:
                body = (
                    await client.get(f"{base}/sandbox/executions/{eid}", headers=headers)
                ).json()
                if body["status"] not in ("queued", "running"):
                    break
                await asyncio.sleep(0.02)
        return time.perf_counter() - start


async def main(runs: int, total: int, backlog: int) -> None:
    configure_logging("WARNING", "console")
    rows: dict[str, Row] = {}
    rows["(a) bare python3 -c"] = await measure(command(BARE), runs, total)
    rows["(b) bwrap floor"] = await measure(command(FLOOR), runs, total)
    engine = sandbox_engine(Settings(_env_file=None))
    engine.check()

    async def engine_run() -> None:
        result = await engine.run("python", Program.single("main.py", "print(1)"))
        assert result.stdout == "1\n"

    rows["(c) engine"] = await measure(engine_run, runs, total, cpu=self_cpu_seconds)
    await engine.drain()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "bench.sqlite3"
        env_d = {"DATABASE_URL": f"sqlite:///{db}", "PORT": str(free_port()), "HOST": "127.0.0.1"}
        subprocess.run(
            [sys.executable, "-m", "coderoom", "migrate"],
            env={**os.environ, **COMMON_ENV, **env_d},
            cwd=work,
            check=True,
            capture_output=True,
        )
        server = spawn([sys.executable, "-c", SERVE], env_d, work)
        root = f"http://127.0.0.1:{env_d['PORT']}"
        base = f"{root}/api/v1"
        try:
            await wait_http(f"{base}/health/live")
            headers = await register(base)
            async with httpx.AsyncClient(timeout=120) as client:
                rows["(d) API embedded"] = await measure(
                    api_runner(client, base, headers),
                    runs,
                    total,
                    cpu=lambda: own_cpu_seconds(server.pid),
                    lag_url=f"{root}/_bench/lag",
                )
            if backlog:
                rows["(d) API embedded"].drain_s = await drain(base, headers, backlog)
        finally:
            server.terminate()
            server.wait()

        name = f"coderoom_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        redis_port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        env_e = {
            "DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{name}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "PORT": str(free_port()),
            "HOST": "127.0.0.1",
        }
        procs = []
        try:
            subprocess.run(
                [sys.executable, "-m", "coderoom", "migrate"],
                env={**os.environ, **COMMON_ENV, **env_e},
                cwd=work,
                check=True,
                capture_output=True,
            )
            api = spawn([sys.executable, "-c", SERVE], env_e, work)
            worker = spawn([sys.executable, "-m", "coderoom", "worker"], env_e, work)
            procs += [api, worker]
            root = f"http://127.0.0.1:{env_e['PORT']}"
            base = f"{root}/api/v1"
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
            async with httpx.AsyncClient(timeout=120) as client:
                rows["(e) API + PostgreSQL + Redis + worker"] = await measure(
                    api_runner(client, base, headers),
                    runs,
                    total,
                    cpu=lambda: own_cpu_seconds(api.pid) + own_cpu_seconds(worker.pid),
                    lag_url=f"{root}/_bench/lag",
                )
            if backlog:
                rows["(e) API + PostgreSQL + Redis + worker"].drain_s = await drain(
                    base, headers, backlog
                )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
            redis.terminate()
            redis.wait()
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()

    floor = rows["(b) bwrap floor"]
    print(
        f"python hello world; sequential runs: {runs}; bursts: {total} requests; "
        f"backlog: {backlog}; {os.cpu_count()} CPUs"
    )
    print(
        f"{'':40}{'p50 ms':>8}{'p95 ms':>8}{'x floor':>8}{'c=8 /s':>8}{'x floor':>8}"
        f"{'c=32 /s':>9}{'x floor':>8}{'CPU ms':>8}{'lag p99':>8}{'drain s':>8}"
    )
    for label, row in rows.items():
        cpu = f"{row.cpu_ms:8.1f}" if row.cpu_ms is not None else f"{'':8}"
        lag = f"{row.lag['p99_ms']:8.1f}" if row.lag.get("samples") else f"{'':8}"
        drained = f"{row.drain_s:8.1f}" if row.drain_s is not None else f"{'':8}"
        print(
            f"{label:40}{row.p50:8.1f}{row.p95:8.1f}{row.p50 / floor.p50:8.2f}"
            f"{row.rps8:8.1f}{row.rps8 / floor.rps8:8.2f}{row.rps32:9.1f}"
            f"{row.rps32 / floor.rps32:8.2f}{cpu}{lag}{drained}"
        )
    print("CPU ms: host CPU per execution outside the sandboxed program, over the c=8 burst.")
    print("lag p99: the API process's event-loop lag (ms) during the c=8 burst.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.burst, args.backlog))
