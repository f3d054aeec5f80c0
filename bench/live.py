"""Live editing, side by side in one run: coderoom's live endpoint against the reference Yjs
server (`@y/websocket-server`, in memory, from tests/support/node's lock) on the same load.

    (r) reference: the Node y-websocket server, one process, nothing persisted
    (1) coderoom, one API instance on PostgreSQL + Redis
    (2) coderoom, two API instances on the same PostgreSQL + Redis (clients alternate)

Load: --clients pycrdt clients (tests/support/yclient.py) in --sessions sessions, each
typing a short marker at the end of the entry file at a steady rate, --rate edits/s in
total. Each receiving peer records when each marker arrived (Y.Text observe, so the cost
per message is O(update)): edit-to-peer latency is arrival minus the sender's send time,
both on CLOCK_MONOTONIC. Reported per target: p50/p99/max latency over the steady phase,
delivered fraction, memory per session (server RSS after the load minus before any room
was loaded, divided by --sessions; both instances summed for (2)), then a ramp of short
phases at higher rates: the highest rate whose p99 stays <= 50 ms with everything
delivered is "held". The bench process's own CPU is printed: it is one Python process
driving every client, so at high rates it can be the bottleneck (then both sides are).

    .venv/bin/python bench/live.py [--clients 50] [--sessions 10] [--rate 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from pycrdt import TextEvent

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.yclient import YClient  # noqa: E402

NODE_DIR = REPO / "tests" / "support" / "node"
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TARGET_P99_MS = 50.0
COMMON_ENV = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_ENABLED": "false",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
    "LIVE_MAX_CONNECTIONS_PER_USER": "100000",
    "LIVE_MAX_CONNECTIONS_PER_SESSION": "100000",
    "LIVE_UPDATES_PER_SECOND": "1000",
    "LIVE_UPDATE_BURST": "1000",
    "DATABASE_POOL_SIZE": "10",
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    """RSS of the process and its children (uvicorn may fork)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str  # what a client connects to, minus "/<room>"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: server exited")
            try:
                await http.get(url, timeout=1)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def start_reference(tmp: Path) -> Server:
    port = free_port()
    process = subprocess.Popen(
        ["node", str(NODE_DIR / "node_modules/@y/websocket-server/src/server.js")],
        cwd=NODE_DIR,
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port)},
        stdout=(tmp / "reference.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    await wait_http(f"http://127.0.0.1:{port}/", process)
    return Server("reference", process, f"ws://127.0.0.1:{port}")


async def start_coderoom(tmp: Path, name: str, env: dict[str, str]) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "coderoom", "serve"],
        cwd=tmp,
        env={**os.environ, **COMMON_ENV, **env, "PORT": str(port), "HOST": "127.0.0.1"},
        stdout=(tmp / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    await wait_http(f"http://127.0.0.1:{port}/api/v1/health/live", process)
    return Server(name, process, f"ws://127.0.0.1:{port}/api/v1/sessions")


@dataclass
class Phase:
    rate: float
    sent: dict[str, float] = field(default_factory=dict)  # marker -> send time
    arrivals: list[tuple[str, float]] = field(default_factory=list)
    recording: bool = False


class Load:
    """The clients and what they saw."""

    def __init__(self, clients: list[tuple[int, YClient]], per_session: int) -> None:
        self.clients = clients
        self.per_session = per_session
        self.phase = Phase(0)
        # pycrdt drops an observer whose subscription is garbage-collected: keep them.
        # (No default-argument lambdas: pycrdt passes a second argument to observers that
        # take two.)
        self.subscriptions = [
            client.text_obj("main.py").observe(self._observer(index)) for index, client in clients
        ]

    def _observer(self, index: int) -> Callable[[TextEvent], None]:
        def observed(event: TextEvent) -> None:
            self._observed(index, event.delta)

        return observed

    def _observed(self, index: int, delta: list[dict[str, object]]) -> None:
        if not self.phase.recording:
            return
        now = time.monotonic()
        for op in delta:
            inserted = op.get("insert")
            if isinstance(inserted, str):
                for marker in inserted.split(";"):
                    if marker and not marker.startswith(f"{index}:"):
                        self.phase.arrivals.append((marker, now))

    async def run(self, rate: float, seconds: float) -> Phase:
        phase = self.phase = Phase(rate)
        interval = len(self.clients) / rate
        start = time.monotonic() + 0.2
        phase.recording = True

        async def typist(index: int, client: YClient) -> None:
            nxt = start + random.random() * interval
            seq = 0
            while nxt < start + seconds:
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
                marker = f"{index}:{seq}"
                text = client.text_obj("main.py")
                before = client.doc.get_state()
                text.insert(len(str(text).encode()), marker + ";")
                phase.sent[marker] = time.monotonic()
                await client.send_since(before)
                seq += 1
                nxt += interval

        await asyncio.gather(*(typist(i, c) for i, c in self.clients))
        await asyncio.sleep(1.0)  # let the last edits arrive (late ones count as late)
        phase.recording = False
        return phase


def summary(phase: Phase, peers: int, seconds: float) -> dict[str, float]:
    latencies = [
        (arrived - phase.sent[marker]) * 1000
        for marker, arrived in phase.arrivals
        if marker in phase.sent
    ]
    expected = len(phase.sent) * peers
    ordered = sorted(latencies) or [float("nan")]
    return {
        "sent_rate": len(phase.sent) / seconds,
        "delivered": len(latencies) / expected if expected else 0.0,
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


async def coderoom_sessions(api: str, count: int) -> tuple[dict[str, str], list[str]]:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        body = (
            await http.post(
                "/auth/register",
                json={
                    "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                    "password": "bench-password-1",
                },
            )
        ).json()
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        ids = []
        for number in range(count):
            created = await http.post(
                "/sessions",
                json={"title": f"bench {number}", "language": "python", "source": ""},
                headers=headers,
            )
            ids.append(created.json()["id"])
    return headers, ids


async def measure(
    name: str,
    servers: list[Server],
    rooms: list[str],
    headers: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, object]:
    per_session = args.clients // args.sessions
    before_kib = sum(rss_kib(s.process.pid) for s in servers)
    clients: list[tuple[int, YClient]] = []
    for number in range(args.clients):
        room = rooms[number % args.sessions]
        server = servers[number % len(servers)]
        client = await YClient(f"{server.url}/{room}", headers).connect()
        if "main.py" not in client.files():  # the reference server starts empty
            await client.set_file("main.py", "")
        clients.append((number, client))
    for _, client in clients:
        await client.wait_for(lambda c=client: "main.py" in c.files())
    load = Load(clients, per_session)
    await load.run(args.rate, 3)  # warm-up: rooms loaded, pools filled
    after_kib = sum(rss_kib(s.process.pid) for s in servers)
    cpu_before = cpu_seconds()
    server_before = sum(process_cpu_seconds(s.process.pid) for s in servers)
    steady = summary(await load.run(args.rate, args.seconds), per_session - 1, args.seconds)
    bench_cpu = (cpu_seconds() - cpu_before) / (args.seconds + 1.2)
    server_cpu = (sum(process_cpu_seconds(s.process.pid) for s in servers) - server_before) / (
        args.seconds + 1.2
    )
    ramp = []
    held = args.rate if steady["p99"] <= TARGET_P99_MS and steady["delivered"] >= 0.999 else 0.0
    for rate in args.ramp:
        result = summary(
            await load.run(rate, args.ramp_seconds), per_session - 1, args.ramp_seconds
        )
        ramp.append((rate, result))
        ok = (
            result["p99"] <= TARGET_P99_MS
            and result["delivered"] >= 0.999
            and result["sent_rate"] >= 0.95 * rate
        )
        if not ok:
            break
        held = rate
    for _, client in clients:
        await client.close()
    return {
        "name": name,
        "steady": steady,
        "memory_per_session_kib": (after_kib - before_kib) / args.sessions,
        "bench_cpu": bench_cpu,
        "server_cpu": server_cpu,
        "ramp": ramp,
        "held": held,
    }


def report(result: dict[str, object]) -> None:
    steady = result["steady"]
    assert isinstance(steady, dict)
    print(
        f"{result['name']:<24} p50 {steady['p50']:6.1f} ms  p99 {steady['p99']:6.1f} ms  "
        f"max {steady['max']:7.1f} ms  delivered {steady['delivered']:.4f}  "
        f"sent {steady['sent_rate']:.0f}/s  mem/session {result['memory_per_session_kib']:.0f} KiB  "
        f"server CPU {result['server_cpu'] * 100:.0f}%  bench CPU {result['bench_cpu'] * 100:.0f}%  "
        f"held {result['held']:.0f}/s"
    )
    ramp = result["ramp"]
    assert isinstance(ramp, list)
    for rate, phase in ramp:
        print(
            f"{'':<24}   ramp {rate:5.0f}/s: p50 {phase['p50']:6.1f} p99 {phase['p99']:7.1f} ms, "
            f"delivered {phase['delivered']:.4f}, sent {phase['sent_rate']:.0f}/s"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0, help="edits/s over all clients")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, nargs="*", default=[400, 800, 1200])
    parser.add_argument("--ramp-seconds", type=float, default=6.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="coderoom-bench-live-"))
    print(
        f"load average before: {os.getloadavg()}; {args.clients} clients in {args.sessions} sessions"
    )

    results = []
    reference = await start_reference(tmp)
    try:
        rooms = [uuid.uuid4().hex for _ in range(args.sessions)]
        results.append(await measure("reference (node, 1)", [reference], rooms, {}, args))
    finally:
        reference.stop()
    report(results[-1])

    name = f"coderoom_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        env = {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "REDIS_PREFIX": name}
        subprocess.run(
            [sys.executable, "-m", "coderoom", "migrate"],
            env={**os.environ, **COMMON_ENV, **env},
            check=True,
            capture_output=True,
        )
        for instances in (1, 2):
            servers = [
                await start_coderoom(tmp, f"api-{instances}-{i}", env) for i in range(instances)
            ]
            try:
                api = servers[0].url.replace("ws://", "http://").removesuffix("/sessions")
                headers, ids = await coderoom_sessions(api, args.sessions)
                rooms = [f"{sid}/live" for sid in ids]
                label = f"coderoom ({instances} API)"
                results.append(await measure(label, servers, rooms, headers, args))
            finally:
                for server in servers:
                    server.stop()
            report(results[-1])
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
