"""Soak: a few thousand mixed executions through a whole deployment, watching for leaks.

Starts an API and a worker (`coderoom serve` / `coderoom worker`, PostgreSQL + a private
Redis), runs --count executions of mixed kinds (hello world, sleep, failure, CPU timeout,
output flood, compile error, C program) at --concurrency, and samples every --every
executions: RSS and fds of the API and the worker, their live child processes, coderoom
cgroup directories, temp files, PostgreSQL and Redis connections. Prints the samples, the
before/after table, and flags growth:

- counts (fds, processes, cgroups, temp files, connections): any growth over the second
  half of the run (pools fill and caches warm up in the first);
- RSS: growth over the second half of the run beyond --rss-tolerance-mb (a leak keeps
  climbing; allocator warm-up and caches level off in the first half).

    .venv/bin/python bench/soak.py [--count 3000] [--concurrency 8] [--every 250]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CGROUP_ROOT = Path("/sys/fs/cgroup")
COMMON_ENV = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_ENABLED": "false",
    "EXECUTION_MAX_ACTIVE_PER_USER": "100000",
    "QUEUE_MAX_DEPTH": "100000",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
}
KINDS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("hello", {"language": "python", "source": "print('hi')"}, {"succeeded"}),
    ("sleep", {"language": "python", "source": "import time; time.sleep(0.2)"}, {"succeeded"}),
    ("fail", {"language": "python", "source": "raise SystemExit(3)"}, {"failed"}),
    (
        "timeout",
        {"language": "python", "source": "while True: pass", "limits": {"cpu_time_ms": 200}},
        {"timed_out"},
    ),
    (
        "flood",
        {"language": "python", "source": "print('x' * 10_000_000)", "limits": {"output_kb": 64}},
        {"output_exceeded"},
    ),
    ("bash", {"language": "bash", "source": "echo $((6*7))"}, {"succeeded"}),
    ("compile_error", {"language": "c", "source": "int main( {"}, {"compile_error"}),
    ("c", {"language": "c", "source": '#include <stdio.h>\nint main(){puts("c");}'}, {"succeeded"}),
]
WEIGHTS = [40, 10, 10, 8, 8, 10, 4, 10]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    full.update(COMMON_ENV | env | {"PYTHONPATH": str(REPO / "src")})
    return subprocess.Popen(
        [sys.executable, "-m", "coderoom", *args],
        env=full,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _status(int(entry.name), "PPid") == pid:
                    count += 1
            except (FileNotFoundError, ProcessLookupError):
                continue
    return count


def _cgroups() -> int:
    return sum(1 for _ in CGROUP_ROOT.glob("**/coderoom-sandbox*") if _.is_dir())


def _temp_files() -> int:
    roots = [Path(tempfile.gettempdir()), Path("/dev/shm")]
    return sum(1 for root in roots if root.exists() for _ in root.iterdir())


@dataclass
class Sample:
    done: int
    api_rss_mb: float
    worker_rss_mb: float
    api_fds: int
    worker_fds: int
    children: int
    cgroups: int
    temp_files: int
    db_connections: int
    redis_clients: int


async def sample(
    done: int, api: int, worker: int, pg: asyncpg.Connection, db: str, redis: Redis
) -> Sample:
    return Sample(
        done=done,
        api_rss_mb=_status(api, "VmRSS") / 1024,
        worker_rss_mb=_status(worker, "VmRSS") / 1024,
        api_fds=len(os.listdir(f"/proc/{api}/fd")),
        worker_fds=len(os.listdir(f"/proc/{worker}/fd")),
        children=_children(api) + _children(worker),
        cgroups=_cgroups(),
        temp_files=_temp_files(),
        db_connections=int(
            await pg.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db)
        ),
        redis_clients=int((await redis.info("clients"))["connected_clients"]) - 1,
    )


async def soak(count: int, concurrency: int, every: int, rss_tolerance_mb: float) -> int:
    name = f"coderoom_soak_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    redis_port = free_port()
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    work = Path(tempfile.mkdtemp(prefix="coderoom-soak-"))
    port = free_port()
    env = {
        "DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{name}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PORT": str(port),
        "HOST": "127.0.0.1",
    }
    procs: list[subprocess.Popen[bytes]] = []
    samples: list[Sample] = []
    wrong: dict[str, int] = {}
    try:
        subprocess.run(
            [sys.executable, "-m", "coderoom", "migrate"],
            env={**os.environ, **COMMON_ENV, **env},
            cwd=work,
            check=True,
            capture_output=True,
        )
        api, worker = spawn(["serve"], env, work), spawn(["worker"], env, work)
        procs += [api, worker]
        base = f"http://127.0.0.1:{port}/api/v1"
        async with httpx.AsyncClient(timeout=120) as client:
            for _ in range(600):
                try:
                    health = (await client.get(f"{base}/health")).json()
                    if health["services"]["queue"].get("workers"):
                        break
                except (httpx.TransportError, ValueError):
                    pass
                await asyncio.sleep(0.1)
            token = (
                await client.post(
                    f"{base}/auth/register",
                    json={
                        "email": f"soak-{uuid.uuid4().hex[:8]}@example.com",
                        "password": "soak-pass-1",
                    },
                )
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            pg = await asyncpg.connect(PG_ADMIN)
            redis = Redis.from_url(env["REDIS_URL"])
            rng = random.Random(1)
            plan = rng.choices(range(len(KINDS)), weights=WEIGHTS, k=count)
            done = 0
            samples.append(await sample(0, api.pid, worker.pid, pg, name, redis))
            queue: asyncio.Queue[int] = asyncio.Queue()
            for kind in plan:
                queue.put_nowait(kind)
            started = time.perf_counter()

            async def lane() -> None:
                nonlocal done
                while not queue.empty():
                    label, body, expected = KINDS[queue.get_nowait()]
                    response = await client.post(
                        f"{base}/sandbox/executions?wait=true", json=body, headers=headers
                    )
                    status = response.json().get("status") if response.status_code == 200 else None
                    if status not in expected:
                        wrong[f"{label}: {response.status_code} {status}"] = (
                            wrong.get(f"{label}: {response.status_code} {status}", 0) + 1
                        )
                    done += 1
                    if done % every == 0:
                        samples.append(await sample(done, api.pid, worker.pid, pg, name, redis))

            await asyncio.gather(*(lane() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            await asyncio.sleep(2)  # background cleanup (cgroup recycling, pool returns)
            samples.append(await sample(done, api.pid, worker.pid, pg, name, redis))
            await pg.close()
            await redis.aclose()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        redis_server.terminate()
        redis_server.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    print(
        f"{count} mixed executions at concurrency {concurrency} in {elapsed:.0f} s "
        f"({count / elapsed:.1f}/s); {os.cpu_count()} CPUs"
    )
    print("wrong verdicts:", wrong or "none")
    columns = list(Sample.__dataclass_fields__)
    print("  ".join(f"{c:>14}" for c in columns))
    for s in samples:
        print(
            "  ".join(
                f"{getattr(s, c):>14.1f}"
                if isinstance(getattr(s, c), float)
                else f"{getattr(s, c):>14}"
                for c in columns
            )
        )
    # Pools fill and caches warm up during the first half; what still grows in the second
    # half is what would grow without bound.
    flags = []
    middle, last = samples[len(samples) // 2], samples[-1]
    for c in (
        "api_fds",
        "worker_fds",
        "children",
        "cgroups",
        "temp_files",
        "db_connections",
        "redis_clients",
    ):
        if getattr(last, c) > getattr(middle, c):
            flags.append(f"{c} grew {getattr(middle, c)} -> {getattr(last, c)} in the second half")
    for c in ("api_rss_mb", "worker_rss_mb"):
        growth = getattr(last, c) - getattr(middle, c)
        if growth > rss_tolerance_mb:
            flags.append(f"{c} grew {growth:.1f} MiB over the second half")
    print("GROWTH: " + "; ".join(flags) if flags else "no growth flagged")
    return 1 if flags or wrong else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--rss-tolerance-mb", type=float, default=2.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args.count, args.concurrency, args.every, args.rss_tolerance_mb)))
