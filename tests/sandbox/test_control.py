"""Watching and steering a run: output as it is written, interactive stdin, signals,
cancel that keeps what was printed. Every wait is on an event the program caused."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field

from coderoom.sandbox import (
    Engine,
    Limits,
    OutputStream,
    Phase,
    Program,
    Result,
    RunControl,
    Status,
)


@dataclass
class Recorder:
    """A RunObserver that lets a test wait for text to appear."""

    phases: list[Phase] = field(default_factory=list)
    chunks: list[tuple[OutputStream, bytes]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def phase(self, phase: Phase) -> None:
        self.phases.append(phase)

    def output(self, stream: OutputStream, data: bytes) -> None:
        self.chunks.append((stream, data))
        self.changed.set()

    def text(self, stream: OutputStream = OutputStream.STDOUT) -> str:
        return b"".join(data for s, data in self.chunks if s is stream).decode()

    async def until(self, expected: str, stream: OutputStream = OutputStream.STDOUT) -> None:
        async with asyncio.timeout(30):
            while expected not in self.text(stream):
                self.changed.clear()
                await self.changed.wait()


def start(
    engine: Engine, language: str, name: str, source: str, **kwargs: object
) -> tuple[asyncio.Task[Result], Recorder, RunControl]:
    recorder = Recorder()
    control = RunControl(interactive=True)
    program = Program.single(name, source)
    task = asyncio.create_task(
        engine.run(language, program, observer=recorder, control=control, **kwargs)  # type: ignore[arg-type]
    )
    return task, recorder, control


PY_LOOP = (
    "while True:\n"
    "    try:\n"
    "        name = input('name? ')\n"
    "    except EOFError:\n"
    "        print('bye'); break\n"
    "    print(f'hello {name}', flush=True)\n"
)


async def test_an_input_loop_works_turn_by_turn(engine: Engine) -> None:
    task, seen, control = start(engine, "python", "main.py", PY_LOOP)
    await seen.until("name? ")
    assert control.write_stdin(b"ada\n")
    await seen.until("hello ada")
    assert "hello grace" not in seen.text()  # it answers only what it was sent
    control.write_stdin(b"grace\n")
    await seen.until("hello grace")
    control.close_stdin()
    result = await task
    assert result.status is Status.SUCCEEDED
    assert result.stdout == "name? hello ada\nname? hello grace\nname? bye\n"
    assert seen.text() == result.stdout  # the stream is exactly what the result keeps
    assert seen.phases == [Phase.RUNNING]


async def test_a_compiled_scanf_loop_gets_its_input_after_compiling(engine: Engine) -> None:
    source = (
        "#include <stdio.h>\n"
        "int main(void) { int n; setvbuf(stdout, NULL, _IONBF, 0);\n"
        '  while (printf("n? "), scanf("%d", &n) == 1) printf("%d\\n", n * n);\n'
        '  puts("end"); return 0; }\n'
    )
    task, seen, control = start(engine, "c", "main.c", source)
    await seen.until("n? ")
    control.write_stdin(b"7\n")
    await seen.until("49\n")
    control.write_stdin(b"12\n")
    await seen.until("144\n")
    control.close_stdin()
    result = await task
    assert result.stdout == "n? 49\nn? 144\nn? end\n"
    assert seen.phases == [Phase.COMPILING, Phase.RUNNING]


async def test_sigint_reaches_the_program_and_not_the_sandbox(engine: Engine) -> None:
    source = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: (print('interrupted'), sys.exit(3)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    task, seen, control = start(engine, "python", "main.py", source)
    await seen.until("ready")
    assert control.send_signal(signal.SIGINT)
    result = await task
    assert result.stdout == "ready\ninterrupted\n"
    assert (result.status, result.exit_code, result.signal) == (Status.FAILED, 3, None)


async def test_sigterm_ends_a_program_without_a_handler_and_is_reported(engine: Engine) -> None:
    task, seen, control = start(engine, "bash", "main.sh", "echo up; sleep 30 & wait")
    await seen.until("up")
    assert control.send_signal(signal.SIGTERM)
    result = await task
    assert result.status is Status.FAILED
    assert (result.exit_code, result.signal) == (128 + signal.SIGTERM, signal.SIGTERM)


async def test_only_program_signals_are_accepted(engine: Engine) -> None:
    task, seen, control = start(engine, "bash", "main.sh", "echo up; read -r line || true")
    await seen.until("up")
    assert not control.send_signal(signal.SIGSTOP)
    assert not control.send_signal(signal.SIGXCPU)
    control.close_stdin()
    assert (await task).status is Status.SUCCEEDED


async def test_cancel_keeps_the_output_so_far(engine: Engine) -> None:
    task, seen, control = start(
        engine, "bash", "main.sh", "echo first; echo oops >&2; sleep 30; echo never"
    )
    await seen.until("oops", OutputStream.STDERR)
    await seen.until("first")
    control.cancel("stopped by ada")
    result = await task
    assert result.status is Status.CANCELLED
    assert result.message == "stopped by ada"
    assert (result.stdout, result.stderr) == ("first\n", "oops\n")


async def test_cancel_before_the_start_ends_at_once(engine: Engine) -> None:
    control = RunControl()
    control.cancel()
    result = await engine.run("python", Program.single("main.py", "print(1)"), control=control)
    assert result.status is Status.CANCELLED
    assert result.stdout == ""


async def test_the_stream_stops_at_the_cap_and_the_verdict_says_so(engine: Engine) -> None:
    task, seen, _ = start(
        engine,
        "python",
        "main.py",
        "import sys\nwhile True: sys.stdout.write('x' * 1000)\n",
        limits=Limits(output_kb=8),
    )
    result = await task
    assert result.status is Status.OUTPUT_EXCEEDED
    assert result.stdout_truncated
    assert len(seen.text()) == len(result.stdout) == 8 * 1024


async def test_a_program_that_never_reads_stdin_is_not_blocked_by_it(engine: Engine) -> None:
    control = RunControl(interactive=True)
    control.write_stdin(b"y" * (1024 * 1024))  # far more than a pipe holds
    result = await engine.run("python", Program.single("main.py", "print('done')"), control=control)
    assert result.status is Status.SUCCEEDED
    assert result.stdout == "done\n"
