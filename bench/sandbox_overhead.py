"""Engine overhead: a Python hello world through the engine vs a bare bwrap spawn, and what
the privilege drop costs.

Everything runs side by side in one process, interleaved, so machine load affects each
alike.
(a) bare: `bwrap` with the same namespaces and root layout running `python3 -c 'print(1)'`,
    started with asyncio and its output read: the least any bwrap-based engine can do.
(b) engine: `Engine.run("python", ...)`: cgroup set-up and accounting, seccomp, the
    launcher (cgroup join, rlimits, uid drop, descriptor closing), masked /proc, limits,
    verdict, clean-up. Also its host CPU per run (this process, from getrusage).
(c) privilege drop: `posix_spawn(/bin/true)` vs `posix_spawn(launcher --uid --gid
    --rlimit... -- /bin/true)`: the launcher's whole cost per run (as root).

    .venv/bin/python bench/sandbox_overhead.py [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from coderoom.infra.logging import configure_logging
from coderoom.sandbox import Engine, Program, Status
from coderoom.sandbox.bwrap import root_layout
from coderoom.sandbox.engine import DEFAULT_UID_BASE
from coderoom.sandbox.launcher import ensure_built

BARE = [
    "bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
    "--unshare-uts", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
    *root_layout(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/work", "--chdir", "/work",
    "--", "/usr/bin/python3", "-c", "print(1)",
]  # fmt: skip


async def bare() -> float:
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*BARE, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert out == b"1\n", out
    return time.perf_counter() - start


async def engine_run(engine: Engine) -> tuple[float, float]:
    cpu, start = time.process_time(), time.perf_counter()
    result = await engine.run("python", Program.single("main.py", "print(1)"))
    assert result.status is Status.SUCCEEDED and result.stdout == "1\n", result
    return time.perf_counter() - start, time.process_time() - cpu


def spawn_and_wait(argv: list[str]) -> float:
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, {"PATH": "/usr/bin:/bin"})
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, argv
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def row(label: str, values: list[float]) -> str:
    mean = statistics.mean(values) * 1000
    return f"{label:34}{pct(values, 0.5):10.2f}{pct(values, 0.95):10.2f}{mean:10.2f}"


async def main(runs: int) -> None:
    configure_logging("WARNING", "console")
    engine = Engine()
    engine.check()
    launcher = ensure_built()
    dropped = [launcher]
    if os.geteuid() == 0:
        uid = str(DEFAULT_UID_BASE)
        dropped += ["--uid", uid, "--gid", uid]
    dropped += ["--rlimit", "core=0", "--rlimit", "nofile=256", "--", "/bin/true"]
    for _ in range(3):  # warm caches for all
        await bare()
        await engine_run(engine)
        spawn_and_wait(["/bin/true"])
        spawn_and_wait(dropped)
    bare_times, engine_times, engine_cpu, direct, through = [], [], [], [], []
    for _ in range(runs):
        bare_times.append(await bare())
        wall, cpu = await engine_run(engine)
        engine_times.append(wall)
        engine_cpu.append(cpu)
        direct.append(spawn_and_wait(["/bin/true"]))
        through.append(spawn_and_wait(dropped))
    await engine.close()
    b50, e50 = pct(bare_times, 0.5), pct(engine_times, 0.5)
    who = "root (runs drop to their own uid)" if os.geteuid() == 0 else f"uid {os.getuid()}"
    print(f"runs: {runs} each, interleaved, sequential; python {sys.version.split()[0]}; {who}")
    print(f"{'':34}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    print(row("(a) bare bwrap spawn", bare_times))
    print(row("(b) engine hello world", engine_times))
    print(row("    engine host CPU per run", engine_cpu))
    print(row("(c) spawn /bin/true", direct))
    print(row("    spawn launcher -> /bin/true", through))
    print(f"ratio (b)/(a) at p50: {e50 / b50:.2f}x")
    print(
        f"launcher (uid drop, rlimits, fd closing) adds {pct(through, 0.5) - pct(direct, 0.5):.2f} ms at p50"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    asyncio.run(main(parser.parse_args().runs))
