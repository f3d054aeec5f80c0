"""One run, from files to Result: the host side of the phases.

1. acquire the run's cgroup (compile-phase limits), put each file, the seccomp filter and
   bwrap's own arguments in memfds;
2. start launcher → bwrap (→ supervisor for compiled languages) off the event loop;
3. compile phase: read compiler output (capped: past the cap the compiler is killed), wait
   for the status line, enforce the compile wall and CPU limits;
4. switch the cgroup to run-phase limits, reset the accounting, answer the supervisor;
5. run phase: stdin in, stdout/stderr out as they come (capped, to the observer), wall and
   tree-CPU watched, until the program exits, is killed, or is cancelled;
6. kill whatever is left, read the accounting, decide the verdict (`verdict.decide`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from coderoom.sandbox import bwrap as argv_builder
from coderoom.sandbox.cgroups import RunGroup
from coderoom.sandbox.control import OutputStream, Phase, RunControl, RunObserver
from coderoom.sandbox.languages import Language
from coderoom.sandbox.policy import CompileLimits, Limits
from coderoom.sandbox.program import Program
from coderoom.sandbox.result import Result, Status, decode
from coderoom.sandbox.seccomp import filter_bytes
from coderoom.sandbox.spawn import Child
from coderoom.sandbox.streams import CappedOutput, StdinWriter, read_pipe
from coderoom.sandbox.verdict import Observed, decide

if TYPE_CHECKING:
    from coderoom.sandbox.engine import Engine

log = structlog.get_logger(__name__)

MONITOR_INTERVAL = 0.02  # seconds between CPU-time checks of the run's cgroup
LAUNCH_FAILED = 125
DRAIN_SECONDS = 5.0  # after the kill, how long output may take to reach end of file
LAUNCHER_ENV = {"PATH": "/usr/bin:/bin"}


def _megabytes(value: int) -> int:
    return value * 1024 * 1024


class _LineReader:
    """The first line written to a pipe (the supervisor's status report)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.line: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if b"\n" in self.data and not self.line.done():
            self.line.set_result(bytes(self.data.split(b"\n", 1)[0]))

    def eof(self) -> None:
        if not self.line.done():
            self.line.set_result(bytes(self.data))


class _LineProtocol(asyncio.Protocol):
    def __init__(self, reader: _LineReader) -> None:
        self.reader = reader

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reader.eof()


class Run:
    """The state of one run. Lives for one `Engine.run` call."""

    def __init__(
        self,
        engine: Engine,
        language: Language,
        program: Program,
        limits: Limits,
        compile_limits: CompileLimits,
        *,
        ids: tuple[int, int] | None,
        observer: RunObserver | None,
        control: RunControl | None,
    ) -> None:
        self.engine = engine
        self.language = language
        self.program = program
        self.limits = limits
        self.compile_limits = compile_limits
        self.ids = ids
        self.observer = observer
        self.control = control
        self.group: RunGroup | None = None
        self.child: Child | None = None
        self.stdin: StdinWriter | None = None
        self.stderr: CappedOutput | None = None
        self.kill_reason: Status | None = None
        self.kill_message: str | None = None
        self.oom_baseline = 0
        self._opened: list[int] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._stdin_open = True
        self._running = False

    # -- steering (RunControl calls these) -------------------------------------------

    def kill(self, reason: Status | None = None, message: str | None = None) -> None:
        if reason is not None and self.kill_reason is None:
            self.kill_reason, self.kill_message = reason, message
        if self.child is not None:
            self.child.kill_group()
        if self.group is not None:
            self.group.kill_all()

    def _stopped(self) -> bool:
        return self.kill_reason is not None

    def cancel(self, message: str) -> None:
        self.kill(Status.CANCELLED, message)

    def write_stdin(self, data: bytes) -> bool:
        if self.stdin is None or not self._stdin_open:
            return False
        return self.stdin.write(data)

    def stdin_buffered(self) -> int:
        return self.stdin.buffered() if self.stdin is not None and not self.stdin.closed else 0

    def close_stdin(self) -> None:
        self._stdin_open = False
        if self.stdin is not None:
            self.stdin.close()

    def send_signal(self, signum: int) -> bool:
        """Signal the program's processes: everything in the run's cgroup but bwrap's own
        two (the host-side monitor and the sandbox's pid 1)."""
        if self.child is None or self.child.returncode is not None or not self._running:
            return False
        own = self.child.pid
        targets = [pid for pid in self._run_pids() if pid != own and _parent_of(pid) != own]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        return bool(targets)

    def _run_pids(self) -> list[int]:
        if self.group is not None:
            return self.group.pids()
        assert self.child is not None
        return _descendants(self.child.pid)

    # -- the run ----------------------------------------------------------------------

    async def execute(self) -> Result:
        manager = self.engine.cgroups
        try:
            if manager is not None:
                self.group = manager.acquire()
                self.oom_baseline = self.group.prepare()
                self.group.set_limits(
                    memory_bytes=_megabytes(self.compile_limits.memory_mb),
                    processes=self.compile_limits.processes,
                )
            if self.control is not None:
                self.control.attach(self)
            return await self._execute()
        finally:
            self.kill()
            if self.control is not None:
                self.control.detach()
            for transport in self._transports:
                transport.close()
            if self.stdin is not None:
                self.stdin.abort()
            for fd in self._opened:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if self.child is not None and self.child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    await self.child.wait()
            if self.group is not None and manager is not None:
                # Killed processes leave the group within milliseconds; the caller need
                # not wait for that, so the group is recycled in the background.
                self.engine.recycle(self.group)

    def _memfd(self, name: str, data: bytes) -> int:
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self._opened.append(fd)
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    def _pipe(self) -> tuple[int, int]:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        self._opened += [read_end, write_end]
        return read_end, write_end

    def _release(self, fd: int) -> None:
        """Close one of ours now (a child-side end once the child has it)."""
        self._opened.remove(fd)
        os.close(fd)

    def _take(self, fd: int) -> int:
        """Hand `fd` over to a transport, which closes it."""
        self._opened.remove(fd)
        return fd

    async def _execute(self) -> Result:
        compiled = self.language.compiled
        files = [(self._memfd("src", f.data), f.name) for f in self.program.files]
        seccomp = self._memfd("seccomp", filter_bytes())
        compile_pipe = status_pipe = ack_pipe = None
        if compiled:
            compile_pipe, status_pipe, ack_pipe = self._pipe(), self._pipe(), self._pipe()
        fds = argv_builder.Fds(
            compile_out=compile_pipe[1] if compile_pipe else None,
            status=status_pipe[1] if status_pipe else None,
            ack=ack_pipe[0] if ack_pipe else None,
            seccomp=seccomp,
            files=files,
            script=self._memfd("script", b"") if compiled else None,
        )
        if fds.script is not None:
            script = argv_builder.compiled_script(
                language=self.language,
                limits=self.limits,
                compile_limits=self.compile_limits,
                fds=fds,
            )
            os.write(fds.script, script.encode())
        options, command = argv_builder.bwrap_args(
            language=self.language,
            limits=self.limits,
            compile_limits=self.compile_limits,
            fds=fds,
            args=self.program.args,
            proc=argv_builder.host_proc_layout(),
        )
        args_fd = self._memfd("args", b"".join(arg.encode() + b"\0" for arg in options))
        argv = argv_builder.launcher_argv(
            launcher=self.engine.launcher,
            bwrap=self.engine.bwrap,
            args_fd=args_fd,
            command=command,
            keep_fds=fds.all(),
            cgroup_procs=self.group.procs_files if self.group else [],
            limits=self._host_limits(compiled),
            ids=self.ids,
        )
        if self.kill_reason is not None:  # cancelled before it started
            return Result(status=self.kill_reason, message=self.kill_message)
        if not compiled:
            self._enter_run_phase()
            if self._stopped():  # its limits could not be applied
                return Result(
                    status=self.kill_reason or Status.INTERNAL_ERROR, message=self.kill_message
                )
        started = time.monotonic()
        self.child = await self.engine.spawner.start(
            argv, env=LAUNCHER_ENV, keep_fds=[args_fd, *fds.all()]
        )
        if self._stopped():  # cancelled while it was starting
            self.kill()
        for fd in (args_fd, *fds.all()):
            self._release(fd)
        stdout = CappedOutput(
            self.limits.output_kb * 1024,
            on_chunk=self._forward(OutputStream.STDOUT),
            on_overflow=self._flooded,
        )
        stderr = CappedOutput(
            self.limits.output_kb * 1024,
            on_chunk=self._forward(OutputStream.STDERR),
            on_overflow=self._flooded,
        )
        self.stderr = stderr
        out_transport, out_done = await read_pipe(self.child.stdout, stdout)
        err_transport, err_done = await read_pipe(self.child.stderr, stderr)
        self.stdin = await StdinWriter.open(self.child.stdin)
        self._transports += [out_transport, err_transport]
        self._feed_stdin()

        compile_text = ""
        compile_ms: int | None = None
        if compile_pipe and status_pipe and ack_pipe:
            compile_text, status_line = await self._compile_phase(compile_pipe[0], status_pipe[0])
            compile_ms = int((time.monotonic() - started) * 1000)
            if not status_line.startswith(b"C"):
                return await self._early_result(status_line, compile_text, compile_ms)
            self._enter_run_phase()
            if self._stopped():
                return await self._early_result(b"", compile_text, compile_ms)
            os.write(ack_pipe[1], b"go\n")
            self._release(ack_pipe[1])
        return await self._run_phase(compile_text, compile_ms, stdout, stderr, out_done, err_done)

    def _host_limits(self, compiled: bool) -> argv_builder.HostLimits:
        cpu_ms = self.limits.cpu_time_ms
        if compiled:
            cpu_ms = max(cpu_ms, self.compile_limits.cpu_time_ms)
        fallback = self.group is None  # rlimits stand in for the cgroup
        return argv_builder.HostLimits(
            cpu_s=argv_builder.cpu_seconds(cpu_ms),
            open_files=self.limits.open_files,
            file_size_kb=self.limits.file_size_kb,
            address_space_mb=self.limits.memory_mb if fallback else None,
            processes=self.limits.processes + 8 if fallback else None,
        )

    def _forward(self, stream: OutputStream) -> Callable[[bytes], None] | None:
        observer = self.observer
        if observer is None:
            return None
        return lambda chunk: observer.output(stream, chunk)

    def _flooded(self) -> None:
        self.kill(Status.OUTPUT_EXCEEDED, f"output exceeded {self.limits.output_kb} KiB")

    def _feed_stdin(self) -> None:
        assert self.stdin is not None
        if self.program.stdin:
            self.stdin.write(self.program.stdin.encode())
        interactive = self.control is not None and self.control.interactive
        if not interactive:
            self.close_stdin()

    def _enter_run_phase(self) -> None:
        """Lower the cgroup to the run's limits and count from zero."""
        if self.group is not None:
            try:
                self.group.set_limits(
                    memory_bytes=_megabytes(self.limits.memory_mb),
                    processes=self.limits.processes + self.language.spec.processes_floor + 2,
                )
            except OSError:
                # EBUSY: what the sandbox already holds (the compiled program on its
                # tmpfs, the supervisor) does not fit under the limit the run asked for.
                self.kill(
                    Status.MEMORY_EXCEEDED,
                    f"memory limit of {self.limits.memory_mb} MiB is below what the "
                    "sandbox needs before the program starts",
                )
            self.group.reset_accounting()
        self._running = True
        if self.observer is not None:
            self.observer.phase(Phase.RUNNING)

    async def _compile_phase(self, compile_r: int, status_r: int) -> tuple[str, bytes]:
        if self.observer is not None:
            self.observer.phase(Phase.COMPILING)
        limits = self.compile_limits
        loop = asyncio.get_running_loop()
        compile_out = CappedOutput(
            limits.output_kb * 1024,
            on_chunk=self._forward(OutputStream.COMPILE),
            on_overflow=lambda: self.kill(
                Status.COMPILE_ERROR, f"compiler output exceeded {limits.output_kb} KiB"
            ),
        )
        compile_transport, compile_done = await read_pipe(self._take(compile_r), compile_out)
        status = _LineReader()
        status_transport, _ = await loop.connect_read_pipe(
            lambda: _LineProtocol(status), os.fdopen(self._take(status_r), "rb", buffering=0)
        )
        self._transports += [compile_transport, status_transport]
        status_line = b""
        try:
            async with asyncio.timeout(limits.wall_time_ms / 1000):
                status_line = await status.line
        except TimeoutError:
            self.kill(Status.COMPILE_ERROR, "compilation exceeded the time limit")
        if self.group is not None and self.group.cpu_ns() // 1_000_000 > limits.cpu_time_ms:
            self.kill(Status.COMPILE_ERROR, "compilation exceeded the CPU time limit")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                await compile_done
        if self.kill_reason is Status.COMPILE_ERROR:
            status_line = b""  # killed: whatever the supervisor said no longer stands
        text = decode(bytes(compile_out.data))
        if compile_out.truncated:
            text += "\n[compiler output truncated]"
        return text, status_line

    async def _run_phase(
        self,
        compile_text: str,
        compile_ms: int | None,
        stdout: CappedOutput,
        stderr: CappedOutput,
        out_done: asyncio.Future[None],
        err_done: asyncio.Future[None],
    ) -> Result:
        assert self.child is not None
        limits = self.limits
        run_started = time.monotonic()
        monitor = asyncio.ensure_future(self._monitor_cpu())
        try:
            async with asyncio.timeout(limits.wall_time_ms / 1000):
                await self.child.wait()
        except TimeoutError:
            self.kill(Status.TIMED_OUT, f"wall time limit of {limits.wall_time_ms} ms exceeded")
            await self.child.wait()
        wall_ms = int((time.monotonic() - run_started) * 1000)
        monitor.cancel()
        self._running = False
        self.kill()  # whatever the main program left behind
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                await asyncio.gather(out_done, err_done)
        cpu_ms = memory_kb = None
        oom = False
        if self.group is not None:
            cpu_ms = self.group.cpu_ns() // 1_000_000
            peak = self.group.peak_memory_bytes()
            memory_kb = peak // 1024 if peak is not None else None
            oom = self.group.oom_kills() > self.oom_baseline
        verdict = decide(
            Observed(
                returncode=self.child.returncode,
                limits=limits,
                kill_reason=self.kill_reason,
                kill_message=self.kill_message,
                oom_killed=oom,
                cpu_ms=cpu_ms,
            )
        )
        return Result(
            status=verdict.status,
            exit_code=verdict.exit_code,
            signal=verdict.signal,
            stdout=decode(bytes(stdout.data)),
            stderr=decode(bytes(stderr.data)),
            compile_output=compile_text,
            stdout_truncated=stdout.truncated,
            stderr_truncated=stderr.truncated,
            wall_time_ms=wall_ms,
            cpu_time_ms=cpu_ms,
            memory_kb=memory_kb,
            compile_time_ms=compile_ms,
            message=verdict.message,
        )

    async def _early_result(self, status_line: bytes, compile_text: str, compile_ms: int) -> Result:
        """The run ended before its run phase: a compile error, a compile limit, a cancel,
        or a sandbox that could not start."""
        assert self.child is not None
        if self.kill_reason is None and not status_line:
            # The supervisor never reported: let the sandbox finish saying why.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_SECONDS):
                    await self.child.wait()
        self.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                await self.child.wait()
        if status_line.startswith(b"E"):
            return Result(
                status=Status.COMPILE_ERROR,
                exit_code=int(status_line[1:].strip() or 1),
                compile_output=compile_text,
                compile_time_ms=compile_ms,
                message="compilation failed",
            )
        if self.group is not None and self.group.oom_kills() > self.oom_baseline:
            return Result(
                status=Status.COMPILE_ERROR,
                compile_output=compile_text,
                compile_time_ms=compile_ms,
                message="compilation exceeded the memory limit",
            )
        if self.kill_reason is not None:
            return Result(
                status=self.kill_reason,
                compile_output=compile_text,
                compile_time_ms=compile_ms,
                message=self.kill_message,
            )
        code = self.child.returncode
        message = "the sandbox could not start the program"
        if code == LAUNCH_FAILED:
            message = "the sandbox could not apply its limits"
        # Before the run phase only the launcher, bwrap and the supervisor write to
        # stderr: their words, not the program's, so they may be logged (trimmed).
        said = decode(bytes(self.stderr.data[:500])) if self.stderr is not None else ""
        log.error("sandbox.start_failed", exit_code=code, stderr=said)
        return Result(status=Status.INTERNAL_ERROR, compile_output=compile_text, message=message)

    async def _monitor_cpu(self) -> None:
        """Enforce the CPU limit over the whole process tree, not just per process."""
        if self.group is None:
            return
        limit_ns = self.limits.cpu_time_ms * 1_000_000
        while True:
            await asyncio.sleep(MONITOR_INTERVAL)
            if self.group.cpu_ns() > limit_ns:
                self.kill(
                    Status.TIMED_OUT, f"CPU time limit of {self.limits.cpu_time_ms} ms exceeded"
                )
                return


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat.rsplit(b")", 1)[1].split()[1])


def _descendants(root: int) -> list[int]:
    """Every process below `root` (used only when there is no cgroup to ask)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (parent := _parent_of(int(entry))) is not None:
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        for pid in children.get(queue.pop(), []):
            found.append(pid)
            queue.append(pid)
    return found
