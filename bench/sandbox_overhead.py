"""Engine overhead: a Python hello world through the engine vs a bare bwrap spawn.

Both run side by side in one process, interleaved, so machine load affects them alike.
(a) bare: `bwrap` with the same namespaces and root layout running `python3 -c 'print(1)'`,
    started with asyncio and its output read — the least any bwrap-based engine can do.
(b) engine: `Engine.run("python", ...)` — cgroup set-up and accounting, seccomp, launcher,
    supervisor handshake, limits, verdict, cleanup.

    .venv/bin/python bench/sandbox_overhead.py [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from coderoom.infra.logging import configure_logging
from coderoom.sandbox import Engine, Program, Status
from coderoom.sandbox.bwrap import _root_layout

BARE = [
    "bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
    "--unshare-uts", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
    *_root_layout(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/work", "--chdir", "/work",
    "--", "/usr/bin/python3", "-c", "print(1)",
]  # fmt: skip


async def bare() -> float:
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*BARE, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert out == b"1\n", out
    return time.perf_counter() - start


async def engine_run(engine: Engine) -> float:
    start = time.perf_counter()
    result = await engine.run("python", Program.single("main.py", "print(1)"))
    assert result.status is Status.SUCCEEDED and result.stdout == "1\n", result
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(runs: int) -> None:
    configure_logging("WARNING", "console")
    engine = Engine()
    engine.check()
    for _ in range(3):  # warm caches for both
        await bare()
        await engine_run(engine)
    bare_times, engine_times = [], []
    for _ in range(runs):
        bare_times.append(await bare())
        engine_times.append(await engine_run(engine))
    b50, e50 = pct(bare_times, 0.5), pct(engine_times, 0.5)
    print(f"runs: {runs} each, interleaved, sequential; python {sys.version.split()[0]} host")
    print(f"{'':24}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    print(
        f"{'(a) bare bwrap spawn':24}{b50:10.1f}{pct(bare_times, 0.95):10.1f}{statistics.mean(bare_times) * 1000:10.1f}"
    )
    print(
        f"{'(b) engine hello world':24}{e50:10.1f}{pct(engine_times, 0.95):10.1f}{statistics.mean(engine_times) * 1000:10.1f}"
    )
    print(f"ratio (b)/(a) at p50: {e50 / b50:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    asyncio.run(main(parser.parse_args().runs))
