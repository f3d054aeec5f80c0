"""Live executions: how late an SSE watcher sees a line, and how fast 1 MiB streams.

Side by side in one run, each against its baseline:

    latency   a program prints a line stamped with the wall clock (the sandbox shares the
              host's clock); each of --watchers SSE clients notes when the line arrives.
              Baseline: the same program, unsandboxed, writing into a pipe this process
              reads. Added latency = SSE arrival - written, minus the pipe's p50.
              Deployments: embedded (one `coderoom serve`, no Redis) and worker (`serve` +
              `coderoom worker` over Redis).
    throughput a program prints 1 MiB; the time from the first stdout byte to the last as
              one SSE client receives them, against the same program writing to a pipe.

    .venv/bin/python bench/streaming.py [--watchers 50] [--lines 200]

The run waits (interactive stdin) until every watcher is connected, so all of them see all
lines. The watchers run in this one process: their own parsing is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import make_settings  # noqa: E402
from tests.support.cluster import Api, Proc, RedisServer, Worker  # noqa: E402
from tests.support.services import create_postgres_database, drop_postgres_database  # noqa: E402
from tests.support.sse import sse_events  # noqa: E402

from coderoom import migrations  # noqa: E402

ENV = {
    "RATE_LIMIT_ENABLED": "false",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
    "EXECUTION_MAX_ACTIVE_PER_USER": "1000",
    "STREAM_MAX_CONNECTIONS_PER_USER": "1000",
    "REDIS_MAX_CONNECTIONS": "200",
}
TICKER = (
    "import sys, time\n"
    "sys.stdin.readline()\n"  # wait for 'go': every watcher is connected by then
    "for i in range({lines}):\n"
    "    print(time.time_ns(), flush=True)\n"
    "    time.sleep(0.01)\n"
)
MEBIBYTE = "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(1024):\n    sys.stdout.write(line)\nsys.stdout.flush()\n"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pipe_latency(lines: int) -> list[float]:
    """ms from print to this process reading the line, unsandboxed, through a pipe."""
    child = subprocess.Popen(
        [sys.executable, "-c", TICKER.format(lines=lines)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    found = [(time.time_ns() - int(line)) / 1e6 for line in child.stdout]
    child.wait()
    return found


def pipe_throughput() -> float:
    """MiB/s from the first byte to the last, unsandboxed, through a pipe."""
    child = subprocess.Popen([sys.executable, "-c", MEBIBYTE], stdout=subprocess.PIPE)
    assert child.stdout is not None
    first = child.stdout.read(1)
    start = time.perf_counter()
    total = len(first) + len(child.stdout.read())
    elapsed = time.perf_counter() - start
    child.wait()
    assert total == 1024 * 1024
    return 1.0 / elapsed


async def sign_up(http: httpx.AsyncClient) -> dict[str, str]:
    body = (
        await http.post(
            "/auth/register",
            json={"email": f"b-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-password"},
        )
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


async def watch(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    ready: asyncio.Event,
    lat: list[float],
) -> None:
    async with http.stream("GET", url, headers=headers) as response:
        async for event in sse_events(response):
            now = time.time_ns()
            if event.event == "status":
                ready.set()
            elif event.event == "stdout":
                for line in event.data["data"].splitlines():
                    lat.append((now - int(line)) / 1e6)
            elif event.event == "result":
                result = event.data
                assert result["status"] == "succeeded", (result["status"], result["message"])
                return


async def sse_latency(api: Api, watchers: int, lines: int) -> list[float]:
    limits = httpx.Limits(max_connections=watchers + 10)
    async with httpx.AsyncClient(base_url=api.url, timeout=120, limits=limits) as http:
        headers = await sign_up(http)
        created = await http.post(
            "/sandbox/executions",
            json={
                "language": "python",
                "source": TICKER.format(lines=lines),
                "interactive": True,
                "limits": {"wall_time_ms": 30000},
            },
            headers=headers,
        )
        eid = created.json()["id"]
        url = f"/sandbox/executions/{eid}/events"
        readies = [asyncio.Event() for _ in range(watchers)]
        found: list[list[float]] = [[] for _ in range(watchers)]
        tasks = [
            asyncio.create_task(watch(http, url, headers, readies[i], found[i]))
            for i in range(watchers)
        ]
        await asyncio.gather(*(r.wait() for r in readies))
        ws_url = api.url.replace("http://", "ws://") + f"/sandbox/executions/{eid}/attach"
        async with connect(
            ws_url, additional_headers={"Authorization": headers["Authorization"]}
        ) as ws:
            await ws.send(json.dumps({"type": "stdin", "data": "go\n"}))
            await asyncio.gather(*tasks)
        return [x for per in found for x in per]


async def sse_throughput(api: Api) -> float:
    async with httpx.AsyncClient(base_url=api.url, timeout=120) as http:
        headers = await sign_up(http)
        created = await http.post(
            "/sandbox/executions",
            json={"language": "python", "source": MEBIBYTE, "limits": {"output_kb": 1024}},
            headers=headers,
        )
        eid = created.json()["id"]
        received, start, end = 0, 0.0, 0.0
        async with http.stream("GET", f"/sandbox/executions/{eid}/events", headers=headers) as r:
            async for event in sse_events(r):
                if event.event == "stdout":
                    if not received:
                        start = time.perf_counter()
                    received += len(event.data["data"])
                    end = time.perf_counter()
                elif event.event == "result":
                    assert event.data["status"] == "succeeded", event.data
        assert received == 1024 * 1024, received
        return 1.0 / (end - start)


def deploy(kind: str, tmp: Path, url: str, procs: list[Proc], servers: list[RedisServer]) -> Api:
    """Start the deployment; everything started is in `procs`/`servers` even if a later
    start fails, so the caller stops it all."""
    env = {**ENV, "DATABASE_URL": url}
    if kind == "worker":
        redis = RedisServer(tmp)
        servers.append(redis)
        env["REDIS_URL"] = redis.url
        procs.append(Worker(f"{kind}-worker", tmp, env))
    api = Api(f"{kind}-api", tmp, env)
    procs.append(api)
    return api


def row(name: str, values: list[float], base: float | None = None) -> str:
    p50, p99 = statistics.median(values), pct(values, 0.99)
    added = f"  added p50 {p50 - base:6.2f}  p99 {p99 - base:6.2f}" if base is not None else ""
    return f"{name:<28} n={len(values):6d}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{added}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    base = pipe_latency(args.lines)
    base_p50 = statistics.median(base)
    print(row("pipe (baseline)", base))
    pipe_mib = statistics.median([pipe_throughput() for _ in range(5)])
    results: dict[str, Any] = {}
    for kind in ("embedded", "worker"):
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-stream-{kind}-"))
        url = await asyncio.to_thread(create_postgres_database)
        procs: list[Proc] = []
        servers: list[RedisServer] = []
        try:
            await asyncio.to_thread(migrations.upgrade, make_settings(database_url=url))
            api = deploy(kind, tmp, url, procs, servers)
            await sse_latency(api, 5, 20)  # warm-up
            for watchers in (1, args.watchers):
                lat = await sse_latency(api, watchers, args.lines)
                print(row(f"SSE {kind}, {watchers} watchers", lat, base_p50))
            results[kind] = statistics.median([await sse_throughput(api) for _ in range(3)])
        finally:
            for proc in procs:
                proc.stop()
            for server in servers:
                server.stop()
            await asyncio.to_thread(drop_postgres_database, url)
    print(f"1 MiB through a pipe:        {pipe_mib:8.1f} MiB/s")
    for kind, mib in results.items():
        print(f"1 MiB through SSE, {kind:<9} {mib:8.1f} MiB/s  ({pipe_mib / mib:.0f}x slower)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
