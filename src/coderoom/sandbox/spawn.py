"""Start a process without blocking the event loop, and watch it without a child watcher.

`posix_spawn` (vfork semantics: no copy of the service's page tables) runs on one
long-lived thread, so fork/exec never stalls the loop. The exit is observed through a pidfd
registered with the loop, which works the same under asyncio and uvloop and cannot be
confused by pid reuse. Every descriptor we create is close-on-exec; the ones the child
must inherit are named in `keep_fds` and re-opened for it by a `dup2(fd, fd)` file action
(which clears close-on-exec in the child only). The launcher then closes everything else,
so nothing the service holds ever reaches a sandbox.

The single spawning thread is deliberate: bubblewrap's `--die-with-parent` ties the
sandbox's life to the *thread* that started it, so that thread must outlive every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


def _spawn(
    argv: Sequence[str], env: Mapping[str, str], stdio: tuple[int, int, int], keep: Sequence[int]
) -> int:
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)]
    actions += [(os.POSIX_SPAWN_DUP2, fd, fd) for fd in keep]
    return os.posix_spawn(argv[0], list(argv), dict(env), file_actions=actions, setsid=True)


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


@dataclass
class Child:
    """A started process: its pid, pidfd and our ends of its stdio pipes."""

    pid: int
    pidfd: int
    stdin: int  # write end, ours
    stdout: int  # read end, ours
    stderr: int  # read end, ours
    returncode: int | None = None  # as subprocess reports it: -N for death by signal N
    _exited: asyncio.Future[int] | None = field(default=None, repr=False)

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._exited = loop.create_future()
        loop.add_reader(self.pidfd, self._on_exit, loop)

    def _on_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_reader(self.pidfd)
        try:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped elsewhere; nothing better to report
            self.returncode = -signal.SIGKILL
        os.close(self.pidfd)
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        assert self._exited is not None, "watch() first"
        return await asyncio.shield(self._exited)

    def kill_group(self) -> None:
        """SIGKILL the process group the child leads (only while it is not reaped: after
        that its pid may belong to someone else)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


class Spawner:
    """Starts children from one dedicated thread (see the module docstring)."""

    def __init__(self) -> None:
        self._thread: ThreadPoolExecutor | None = None

    async def start(
        self, argv: Sequence[str], *, env: Mapping[str, str], keep_fds: Sequence[int]
    ) -> Child:
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawn")
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
        stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
        theirs = (stdin_r, stdout_w, stderr_w)
        ours = (stdin_w, stdout_r, stderr_r)
        spawning = loop.run_in_executor(self._thread, _spawn, argv, env, theirs, tuple(keep_fds))
        try:
            pid = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            # The thread may be inside posix_spawn using these descriptors: let it finish,
            # then kill whatever it started before giving the descriptors back.
            with contextlib.suppress(Exception):
                started = await spawning
                os.killpg(started, signal.SIGKILL)
                await asyncio.to_thread(os.waitpid, started, 0)
            _close(*theirs, *ours)
            raise
        except BaseException:
            _close(*theirs, *ours)
            raise
        _close(*theirs)
        child = Child(
            pid=pid, pidfd=os.pidfd_open(pid), stdin=stdin_w, stdout=stdout_r, stderr=stderr_r
        )
        child.watch(loop)
        return child

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
