"""Verdicts are exact: each limit trips as itself, and a bad program is a result."""

from __future__ import annotations

import asyncio
import time

from coderoom.sandbox import Engine, Limits, Program, Status
from coderoom.sandbox.policy import CompileLimits
from tests.sandbox.conftest import REGISTRY
from tests.support.services import unavailable


def py(source: str, **kwargs: object) -> Program:
    return Program.single("main.py", source, **kwargs)  # type: ignore[arg-type]


def sh(source: str, **kwargs: object) -> Program:
    return Program.single("main.sh", source, **kwargs)  # type: ignore[arg-type]


async def test_infinite_loop_is_timed_out_by_cpu(engine: Engine) -> None:
    result = await engine.run("python", py("while True: pass"), Limits(cpu_time_ms=500))
    assert result.status is Status.TIMED_OUT
    assert "CPU" in (result.message or "")
    assert result.cpu_time_ms is not None
    assert result.cpu_time_ms >= 500


async def test_sleeper_is_timed_out_by_wall_clock_without_using_cpu(engine: Engine) -> None:
    result = await engine.run("python", py("import time; time.sleep(60)"), Limits(wall_time_ms=500))
    assert result.status is Status.TIMED_OUT
    assert "wall" in (result.message or "")
    assert result.cpu_time_ms is not None
    assert result.cpu_time_ms < 500


async def test_cpu_limit_counts_every_process_of_the_tree(engine: Engine) -> None:
    # Four busy children each stay under the per-process rlimit; together they do not.
    source = "for i in 1 2 3 4; do ( while :; do :; done ) & done; wait"
    result = await engine.run("bash", sh(source), Limits(cpu_time_ms=800, wall_time_ms=20000))
    assert result.status is Status.TIMED_OUT
    assert "CPU" in (result.message or "")


async def test_memory_bomb_is_memory_exceeded(engine: Engine) -> None:
    source = "x = []\nwhile True: x.append(bytearray(10**7))"
    result = await engine.run("python", py(source), Limits(memory_mb=64))
    assert result.status is Status.MEMORY_EXCEEDED
    assert result.memory_kb is not None
    assert result.memory_kb <= 64 * 1024


async def test_memory_held_by_children_counts(engine: Engine) -> None:
    # Each child holds 40 MiB: no single process passes 64 MiB, the tree does.
    source = (
        "import os, time\n"
        "for _ in range(4):\n"
        "    if os.fork() == 0:\n"
        "        b = bytearray(40 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)\n"
        "time.sleep(30)"
    )
    result = await engine.run("python", py(source), Limits(memory_mb=64, wall_time_ms=3000))
    assert result.status is Status.MEMORY_EXCEEDED


async def test_output_flood_is_stopped_at_the_limit(engine: Engine) -> None:
    result = await engine.run("python", py("while True: print('x' * 1000)"), Limits(output_kb=64))
    assert result.status is Status.OUTPUT_EXCEEDED
    assert result.stdout_truncated
    assert len(result.stdout.encode()) == 64 * 1024


async def test_stderr_has_its_own_cap_and_flag(engine: Engine) -> None:
    source = "import sys; sys.stderr.write('e' * 5000); print('fine')"
    result = await engine.run("python", py(source), Limits(output_kb=1))
    assert result.status is Status.OUTPUT_EXCEEDED
    assert result.stderr_truncated
    assert not result.stdout_truncated


async def test_exit_codes_and_signals(engine: Engine) -> None:
    failed = await engine.run("bash", sh("exit 3"))
    assert (failed.status, failed.exit_code, failed.signal) == (Status.FAILED, 3, None)
    crashed = await engine.run("bash", sh("kill -SEGV $$"))
    assert crashed.status is Status.FAILED
    assert crashed.signal == 11


async def test_invalid_utf8_output_is_replaced_not_fatal(engine: Engine) -> None:
    source = "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe\\x00 end\\n')"
    result = await engine.run("python", py(source))
    assert result.status is Status.SUCCEEDED
    assert result.stdout == "ok \ufffd\ufffd\x00 end\n"


async def test_huge_stdin_is_delivered_whole(engine: Engine) -> None:
    data = "y" * (1024 * 1024 - 1) + "\n"
    source = "import sys; print(len(sys.stdin.read()))"
    result = await engine.run("python", py(source, stdin=data))
    assert result.stdout == f"{len(data)}\n"


async def test_program_that_ignores_stdin_does_not_hang(engine: Engine) -> None:
    result = await engine.run("python", py("print('done')", stdin="z" * (1024 * 1024)))
    assert result.status is Status.SUCCEEDED


async def test_filling_the_workspace_fails_inside_only(engine: Engine) -> None:
    source = "head -c 100M /dev/zero > big; echo rc=$?; df -k /work | tail -1"
    result = await engine.run("bash", sh(source), Limits(workspace_mb=8, file_size_kb=65536))
    assert "rc=1" in result.stdout
    after = await engine.run("bash", sh("echo alive"))
    assert after.stdout == "alive\n"


async def test_fork_bomb_leaves_the_host_healthy(engine: Engine) -> None:
    result = await engine.run("bash", sh(":(){ :|:& };:"), Limits(wall_time_ms=3000, processes=32))
    assert result.status in (Status.FAILED, Status.SUCCEEDED, Status.TIMED_OUT)
    after = await engine.run("bash", sh("echo alive"))
    assert after.stdout == "alive\n"


def need_c() -> None:
    if "c" not in REGISTRY.ids():
        unavailable("A C compiler", "gcc not found")


async def test_compile_output_bomb_is_capped() -> None:
    need_c()
    engine = Engine(registry=REGISTRY, compile_limits=CompileLimits(output_kb=4))
    source = "\n".join(f"#warning flood {i}" for i in range(20000)) + "\nint main(){}"
    result = await engine.run("c", Program.single("main.c", source))
    assert result.compile_output.endswith("[compiler output truncated]")
    assert len(result.compile_output) < 8 * 1024


async def test_compile_that_never_ends_is_stopped() -> None:
    need_c()
    engine = Engine(
        registry=REGISTRY, compile_limits=CompileLimits(wall_time_ms=1500, cpu_time_ms=1000)
    )
    result = await engine.run("c", Program.single("main.c", '#include "/dev/zero"\n'))
    assert result.status is Status.COMPILE_ERROR
    assert result.stdout == ""


async def test_concurrency_is_bounded() -> None:
    engine = Engine(registry=REGISTRY, concurrency=1)
    started = time.monotonic()
    results = await asyncio.gather(*(engine.run("bash", sh("sleep 0.3")) for _ in range(3)))
    assert all(r.status is Status.SUCCEEDED for r in results)
    assert time.monotonic() - started >= 0.9  # one at a time: three sleeps back to back
