"""The engine: run a Program in the sandbox and turn what happened into a Result.

The host side of a run:
1. validate, create the run's cgroup, put each source file in a memfd;
2. start launcher → bwrap → supervisor script (see bwrap.py);
3. compile phase: read compiler output (capped), wait for the status line, enforce the
   compile wall/CPU limits;
4. switch the cgroup to run-phase limits, reset accounting, answer the supervisor;
5. run phase: feed stdin, read stdout/stderr with their caps (over the cap: kill,
   output_exceeded), watch wall and cgroup CPU time, wait for exit;
6. kill whatever is left of the run (bwrap's pid namespace and the cgroup), read the
   accounting, decide the verdict, remove the cgroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import structlog

from coderoom.sandbox import bwrap as argv_builder
from coderoom.sandbox.cgroups import CgroupManager, CgroupUnavailable, RunGroup, shared_manager
from coderoom.sandbox.languages import Language, LanguageRegistry
from coderoom.sandbox.policy import DEFAULTS, CompileLimits, Limits
from coderoom.sandbox.program import Program, ProgramError
from coderoom.sandbox.result import Result, Status, decode
from coderoom.sandbox.seccomp import SeccompUnavailable, filter_bytes

log = structlog.get_logger(__name__)

MONITOR_INTERVAL = 0.02  # seconds between CPU-time checks of the run's cgroup
LAUNCH_FAILED = 125


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up here; the message says exactly why."""


class UnknownLanguage(ProgramError):
    pass


@dataclass
class _Stream:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False


async def _read_capped(
    reader: asyncio.StreamReader | None, stream: _Stream, *, on_overflow: Callable[[], None] | None
) -> None:
    """Read until EOF keeping at most `limit` bytes; past it, flag and (maybe) stop the run."""
    if reader is None:
        return
    while chunk := await reader.read(65536):
        room = stream.limit - len(stream.data)
        if len(chunk) > room:
            stream.data += chunk[: max(room, 0)]
            if not stream.truncated:
                stream.truncated = True
                if on_overflow is not None:
                    on_overflow()
        else:
            stream.data += chunk


class Engine:
    """Runs programs; safe to call concurrently, at most `concurrency` runs at once."""

    def __init__(
        self,
        *,
        registry: LanguageRegistry | None = None,
        concurrency: int | None = None,
        bwrap: str | None = None,
        compile_limits: CompileLimits | None = None,
    ) -> None:
        self._registry = registry
        self.concurrency = concurrency or os.cpu_count() or 1
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._bwrap = bwrap
        self.compile_limits = compile_limits or CompileLimits()
        self._checked: str | None = None
        self._cleanups: set[asyncio.Future[None]] = set()

    @cached_property
    def registry(self) -> LanguageRegistry:
        return self._registry if self._registry is not None else LanguageRegistry.detect()

    @cached_property
    def cgroups(self) -> CgroupManager | None:
        try:
            manager = shared_manager()
        except (CgroupUnavailable, OSError) as exc:
            log.warning(
                "sandbox.cgroups_unavailable",
                reason=str(exc),
                fallback="rlimits: memory is bounded by address space (breaks JVM/V8), "
                "process counts per user, no peak-memory accounting",
            )
            return None
        log.info("sandbox.cgroups", version=manager.version)
        return manager

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def drain(self) -> None:
        """Wait for background clean-up (tests and shutdown call this)."""
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)

    def _semaphore(self) -> asyncio.Semaphore:
        """The run slots of the running event loop (an engine may outlive a loop in tests)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self.concurrency), loop
        return self._slots

    # -- availability ---------------------------------------------------------------

    def check(self) -> None:
        """Raise SandboxUnavailable unless a sandbox can really be started here."""
        if self._checked == "ok":
            return
        path = self._bwrap or shutil.which("bwrap", path="/usr/local/bin:/usr/bin:/bin")
        if path is None or not os.access(path, os.X_OK):
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed: install the 'bubblewrap' package "
                "(apt-get install bubblewrap)"
            )
        try:
            filter_bytes()
        except SeccompUnavailable as exc:
            raise SandboxUnavailable(f"{exc}: install the 'libseccomp2' package") from exc
        probe = [
            path, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--die-with-parent", "--cap-drop", "ALL",
            *argv_builder._root_layout(), "--proc", "/proc", "--dev", "/dev",
            "--", "/bin/true",
        ]  # fmt: skip
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"bwrap could not be started: {exc}") from exc
        if done.returncode != 0:
            raise SandboxUnavailable(
                "bwrap cannot create namespaces here "
                f"(exit {done.returncode}: {done.stderr.strip()}); enable unprivileged user "
                "namespaces (sysctl kernel.unprivileged_userns_clone=1) or run as a user "
                "allowed to create them"
            )
        self._bwrap = path
        _ = self.cgroups  # detect now, so the warning appears at start-up
        self._checked = "ok"

    # -- running ----------------------------------------------------------------------

    async def run(self, language_id: str, program: Program, limits: Limits | None = None) -> Result:
        """Run `program`; every outcome, including timeouts and OOM, is a Result."""
        language = self.registry.get(language_id)
        if language is None:
            raise UnknownLanguage(
                f"unknown language {language_id!r}; known: {', '.join(self.registry.ids())}"
            )
        self.check()
        limits = limits or DEFAULTS
        problems = limits.problems()
        if problems:
            raise ProgramError(f"invalid limits: {problems}")
        async with self._semaphore():
            try:
                return await _Run(self, language, program, limits).execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("sandbox.internal_error", language=language_id)
                return Result(
                    status=Status.INTERNAL_ERROR, message=f"sandbox failure: {type(exc).__name__}"
                )


class _Run:
    """The state of one run. Lives for one `Engine.run` call."""

    def __init__(
        self, engine: Engine, language: Language, program: Program, limits: Limits
    ) -> None:
        self.engine = engine
        self.language = language
        self.program = program
        self.limits = limits
        self.compile_limits = engine.compile_limits
        self.group: RunGroup | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.kill_reason: Status | None = None
        self.kill_message: str | None = None
        self.oom_baseline = 0

    def _memory_bytes(self, megabytes: int) -> int:
        return megabytes * 1024 * 1024

    def kill(self, reason: Status | None = None, message: str | None = None) -> None:
        if reason is not None and self.kill_reason is None:
            self.kill_reason, self.kill_message = reason, message
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.group is not None:
            self.group.kill_all()

    async def execute(self) -> Result:
        manager = self.engine.cgroups
        opened: list[int] = []
        try:
            if manager is not None:
                self.group = manager.acquire()
                self.oom_baseline = self.group.prepare()
                self.group.set_limits(
                    memory_bytes=self._memory_bytes(self.compile_limits.memory_mb),
                    processes=self.compile_limits.processes,
                )
            return await self._execute(opened)
        finally:
            self.kill()
            for fd in opened:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if self.process is not None and self.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    await self.process.wait()
            if self.group is not None and manager is not None:
                # Killed processes leave the group within milliseconds; the caller need
                # not wait for that, so the group is recycled in the background.
                self.engine._background(self._recycle_group(manager, self.group))

    async def _recycle_group(self, manager: CgroupManager, group: RunGroup) -> None:
        for _ in range(500):
            if not group.pids():
                manager.release(group)
                return
            group.kill_all()
            await asyncio.sleep(0.01)
        log.error("sandbox.cgroup_leak", dirs=[str(d) for d in group.dirs.values()])

    def _memfd(self, opened: list[int], name: str, data: bytes) -> int:
        fd = os.memfd_create(name, 0)
        opened.append(fd)
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    async def _execute(self, opened: list[int]) -> Result:
        compiled = self.language.compiled
        limits = self.limits
        files = [
            (self._memfd(opened, "src", f.content.encode()), f.name) for f in self.program.files
        ]
        seccomp_fd = self._memfd(opened, "seccomp", filter_bytes())
        if compiled:
            compile_r, compile_w = os.pipe()
            status_r, status_w = os.pipe()
            ack_r, ack_w = os.pipe()
            opened += [compile_r, compile_w, status_r, status_w, ack_r, ack_w]
            fds = argv_builder.Fds(
                compile_out=compile_w, status=status_w, ack=ack_r, seccomp=seccomp_fd, files=files
            )
            child_fds = [compile_w, status_w, ack_r, seccomp_fd, *(fd for fd, _ in files)]
        else:
            fds = argv_builder.Fds(
                compile_out=None, status=None, ack=None, seccomp=seccomp_fd, files=files
            )
            child_fds = [seccomp_fd, *(fd for fd, _ in files)]
            self._enter_run_phase()
        inner = argv_builder.bwrap_argv(
            bwrap=self.engine._bwrap or "bwrap",
            language=self.language,
            limits=limits,
            compile_limits=self.compile_limits,
            fds=fds,
            args=self.program.args,
        )
        if self.group is None:  # rlimit fallback: address space and per-user processes
            inner = _with_fallback_limits(inner, limits)
        argv = argv_builder.launcher_argv(
            cgroup_procs=self.group.procs_files if self.group else [], limits=limits, inner=inner
        )
        started = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=child_fds,
            start_new_session=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        for fd in child_fds:
            os.close(fd)
            opened.remove(fd)

        compile_text = ""
        if compiled:
            compile_text, status_line = await self._compile_phase(opened, compile_r, status_r)
            if not status_line.startswith(b"C"):
                return await self._early_result(status_line, compile_text, started)
            self._enter_run_phase()
            os.write(ack_w, b"go\n")
            os.close(ack_w)
            opened.remove(ack_w)
        return await self._run_phase(compile_text)

    def _enter_run_phase(self) -> None:
        """Lower the cgroup to the run's limits and count from zero."""
        if self.group is not None:
            self.group.set_limits(
                memory_bytes=self._memory_bytes(self.limits.memory_mb),
                processes=self.limits.processes + self.language.spec.processes_floor + 2,
            )
            self.group.reset_accounting()

    async def _compile_phase(
        self, opened: list[int], compile_r: int, status_r: int
    ) -> tuple[str, bytes]:
        loop = asyncio.get_running_loop()
        compile_out = _Stream(self.compile_limits.output_kb * 1024)
        compile_reader = await _pipe_reader(loop, compile_r)
        status_reader = await _pipe_reader(loop, status_r)
        opened.remove(compile_r)
        opened.remove(status_r)
        compile_task = asyncio.ensure_future(
            _read_capped(compile_reader, compile_out, on_overflow=None)
        )
        status_line = b""
        try:
            async with asyncio.timeout(self.compile_limits.wall_time_ms / 1000):
                status_line = await status_reader.readline()
        except TimeoutError:
            self.kill(Status.COMPILE_ERROR, "compilation exceeded the time limit")
        if self.group is not None:
            cpu_ms = self.group.cpu_ns() // 1_000_000
            if cpu_ms > self.compile_limits.cpu_time_ms:
                self.kill(Status.COMPILE_ERROR, "compilation exceeded the CPU time limit")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await compile_task
        compile_text = decode(bytes(compile_out.data))
        if compile_out.truncated:
            compile_text += "\n[compiler output truncated]"
        return compile_text, status_line

    async def _run_phase(self, compile_text: str) -> Result:
        assert self.process is not None
        limits = self.limits
        run_started = time.monotonic()
        stdout = _Stream(limits.output_kb * 1024)
        stderr = _Stream(limits.output_kb * 1024)

        def flooded() -> None:
            self.kill(Status.OUTPUT_EXCEEDED, f"output exceeded {limits.output_kb} KiB")

        readers = [
            asyncio.ensure_future(_read_capped(self.process.stdout, stdout, on_overflow=flooded)),
            asyncio.ensure_future(_read_capped(self.process.stderr, stderr, on_overflow=flooded)),
        ]
        feeder = asyncio.ensure_future(self._feed_stdin())
        monitor = asyncio.ensure_future(self._monitor_cpu())
        try:
            async with asyncio.timeout(limits.wall_time_ms / 1000):
                await self.process.wait()
        except TimeoutError:
            self.kill(Status.TIMED_OUT, f"wall time limit of {limits.wall_time_ms} ms exceeded")
            await self.process.wait()
        wall_ms = int((time.monotonic() - run_started) * 1000)
        monitor.cancel()
        feeder.cancel()
        self.kill()  # whatever the main program left behind
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await asyncio.gather(*readers)
        for task in readers:
            task.cancel()
        return self._verdict(compile_text, stdout, stderr, wall_ms)

    async def _early_result(self, status_line: bytes, compile_text: str, started: float) -> Result:
        assert self.process is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.process.wait()
        wall_ms = int((time.monotonic() - started) * 1000)
        if status_line.startswith(b"E"):
            return Result(
                status=Status.COMPILE_ERROR,
                exit_code=int(status_line[1:].strip() or 1),
                compile_output=compile_text,
                wall_time_ms=wall_ms,
                message="compilation failed",
            )
        if self.kill_reason is not None:
            return Result(
                status=self.kill_reason,
                compile_output=compile_text,
                wall_time_ms=wall_ms,
                message=self.kill_message,
            )
        code = self.process.returncode
        stderr = b""
        if self.process.stderr is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    stderr = await self.process.stderr.read(4096)
        message = "the sandbox could not start the program"
        if code == LAUNCH_FAILED:
            message = "the sandbox could not apply its limits"
        log.error("sandbox.start_failed", exit_code=code, stderr=decode(stderr)[:500])
        if (
            self.language.compiled
            and self.group is not None
            and self.group.oom_kills() > self.oom_baseline
        ):
            return Result(
                status=Status.COMPILE_ERROR,
                compile_output=compile_text,
                message="compilation exceeded the memory limit",
            )
        return Result(status=Status.INTERNAL_ERROR, compile_output=compile_text, message=message)

    async def _feed_stdin(self) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        stdin = self.process.stdin
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if self.program.stdin:
                stdin.write(self.program.stdin.encode())
                await stdin.drain()
            stdin.close()

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

    def _verdict(self, compile_text: str, stdout: _Stream, stderr: _Stream, wall_ms: int) -> Result:
        assert self.process is not None
        code = self.process.returncode
        exit_code: int | None = None
        sig: int | None = None
        if code is not None and code < 0:
            sig = -code
        elif code is not None and code > 128 and code - 128 < 65:
            sig, exit_code = code - 128, code  # bwrap reports a signal death as 128+N
        else:
            exit_code = code
        cpu_ms = memory_kb = None
        oom = False
        if self.group is not None:
            cpu_ms = self.group.cpu_ns() // 1_000_000
            peak = self.group.peak_memory_bytes()
            memory_kb = peak // 1024 if peak is not None else None
            oom = self.group.oom_kills() > self.oom_baseline
        status, message = (
            Status.SUCCEEDED if exit_code == 0 and sig is None else Status.FAILED,
            None,
        )
        # An OOM kill anywhere in the tree explains whatever followed (a parent waiting
        # for a dead child until the wall clock ran out), so it outranks a timeout.
        if self.kill_reason is Status.OUTPUT_EXCEEDED or (self.kill_reason and not oom):
            status, message = self.kill_reason, self.kill_message
        elif oom:
            status, message = (
                Status.MEMORY_EXCEEDED,
                f"memory limit of {self.limits.memory_mb} MiB exceeded",
            )
        elif sig == signal.SIGXCPU or (cpu_ms is not None and cpu_ms > self.limits.cpu_time_ms):
            status, message = (
                Status.TIMED_OUT,
                f"CPU time limit of {self.limits.cpu_time_ms} ms exceeded",
            )
        elif sig == signal.SIGXFSZ:
            message = f"file size limit of {self.limits.file_size_kb} KiB exceeded"
        return Result(
            status=status,
            exit_code=exit_code,
            signal=sig,
            stdout=decode(bytes(stdout.data)),
            stderr=decode(bytes(stderr.data)),
            compile_output=compile_text,
            stdout_truncated=stdout.truncated,
            stderr_truncated=stderr.truncated,
            wall_time_ms=wall_ms,
            cpu_time_ms=cpu_ms,
            memory_kb=memory_kb,
            message=message,
        )


async def _pipe_reader(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=1024 * 1024)
    protocol = asyncio.StreamReaderProtocol(reader)
    await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", buffering=0))
    return reader


def _with_fallback_limits(argv: list[str], limits: Limits) -> list[str]:
    """Without cgroups: cap address space and processes with rlimits in the script."""
    script_index = argv.index("-c", argv.index("--")) + 1
    extra = f"ulimit -v {limits.memory_mb * 1024} -u {limits.processes + 8}; "
    argv = list(argv)
    argv[script_index] = argv[script_index].replace("ulimit -t", f"{extra}ulimit -t", 1)
    return argv
