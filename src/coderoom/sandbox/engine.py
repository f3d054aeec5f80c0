"""The engine: run a Program in the sandbox and return its Result.

`Engine.run` is the whole interface: a language id, a `Program`, `Limits`, and optionally
a `RunObserver` (output as it comes) and a `RunControl` (stdin, signals, cancel). Every
outcome, a timeout or an OOM kill included, is a `Result`. At most `concurrency` runs go at
once; each holds a slot, and when the service runs as root each slot is its own
unprivileged host uid (`uid_base + slot`), so concurrent runs never share an identity and
no run ever has host uid 0. The phases of one run are in `run.py`; the command lines in
`bwrap.py`; the verdict in `verdict.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Coroutine
from functools import cached_property
from typing import Any

import structlog

from coderoom.sandbox import bwrap as argv_builder
from coderoom.sandbox.cgroups import CgroupManager, CgroupUnavailable, RunGroup, shared_manager
from coderoom.sandbox.control import RunControl, RunObserver
from coderoom.sandbox.identity import UidClaims, UidRangeExhausted
from coderoom.sandbox.languages import LanguageRegistry
from coderoom.sandbox.launcher import LauncherUnavailable, ensure_built
from coderoom.sandbox.policy import DEFAULTS, CompileLimits, Limits
from coderoom.sandbox.program import Program, ProgramError
from coderoom.sandbox.result import Result, Status
from coderoom.sandbox.run import LAUNCHER_ENV, Run
from coderoom.sandbox.seccomp import SeccompUnavailable, filter_bytes
from coderoom.sandbox.spawn import Spawner

log = structlog.get_logger(__name__)

#: The host uid range of sandboxes when the service runs as root: far above regular and
#: system users, below 2^31 (signed-int trouble in some tools). Each run slot of each engine
#: on the host claims its own uid from it (identity.py). Choose a range no other user or
#: container uses (SANDBOX_UID_BASE, SANDBOX_UID_COUNT).
DEFAULT_UID_BASE = 2_000_000_000
DEFAULT_UID_COUNT = 65_536
MAX_UID = 2**31 - 2


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up here; the message says exactly why."""


class UnknownLanguage(ProgramError):
    pass


class Engine:
    """Runs programs; safe to call concurrently, at most `concurrency` runs at once."""

    def __init__(
        self,
        *,
        registry: LanguageRegistry | None = None,
        concurrency: int | None = None,
        bwrap: str | None = None,
        compile_limits: CompileLimits | None = None,
        uid_base: int = DEFAULT_UID_BASE,
        uid_count: int = DEFAULT_UID_COUNT,
    ) -> None:
        self._registry = registry
        self.concurrency = concurrency or os.cpu_count() or 1
        self._slots: asyncio.Queue[int] | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._bwrap = bwrap
        self.compile_limits = compile_limits or CompileLimits()
        self.uid_base = uid_base
        self.uid_count = uid_count
        self._uids = UidClaims(base=uid_base, size=uid_count)
        self.spawner = Spawner()
        self._checked = False
        self._launcher: str | None = None
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
                "process counts per sandbox uid, no peak-memory accounting",
            )
            return None
        log.info("sandbox.cgroups", version=manager.version)
        return manager

    @property
    def bwrap(self) -> str:
        assert self._bwrap is not None, "check() first"
        return self._bwrap

    @property
    def launcher(self) -> str:
        assert self._launcher is not None, "check() first"
        return self._launcher

    # -- identity ---------------------------------------------------------------------

    def ids_for(self, slot: int) -> tuple[int, int] | None:
        """The host (uid, gid) slot `slot` runs as: its own, claimed host-wide, when we are
        root; None (keep ours, which is not root) otherwise."""
        if os.geteuid() != 0:
            return None
        try:
            uid = self._uids.claim(self.concurrency)[slot]
        except UidRangeExhausted as exc:
            raise SandboxUnavailable(str(exc)) from exc
        return uid, uid

    def _check_identity(self) -> None:
        if os.geteuid() != 0:
            if os.getuid() == 0 or os.getgid() == 0 or os.getegid() == 0:
                raise SandboxUnavailable(
                    "the service runs with a root user or group id but not as root: run it "
                    "as root (sandboxes get their own uids) or fully as another user"
                )
            return
        last = self.uid_base + self.uid_count - 1
        if self.uid_base < 1000 or last > MAX_UID or self.uid_count < self.concurrency:
            raise SandboxUnavailable(
                f"SANDBOX_UID_BASE={self.uid_base} with SANDBOX_UID_COUNT={self.uid_count} "
                f"must give at least {self.concurrency} uids between 1000 and {MAX_UID}, "
                "used by no user or container"
            )

    # -- availability -----------------------------------------------------------------

    def check(self) -> None:
        """Raise SandboxUnavailable unless a sandbox can really be started here."""
        if self._checked:
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
        try:
            launcher = ensure_built()
        except LauncherUnavailable as exc:
            raise SandboxUnavailable(str(exc)) from exc
        self._check_identity()
        self._probe(launcher, path)
        self._bwrap, self._launcher = path, launcher
        _ = self.cgroups  # detect now, so the warning appears at start-up
        self._checked = True

    def _probe(self, launcher: str, bwrap: str) -> None:
        """Start a real (empty) sandbox the way runs start, as the first slot's uid."""
        ids = self.ids_for(0)
        probe = [launcher, "--rlimit", "core=0"]
        if ids is not None:
            probe += ["--uid", str(ids[0]), "--gid", str(ids[1])]
        probe += [
            "--", bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--disable-userns", "--die-with-parent", "--cap-drop", "ALL",
            *argv_builder.root_layout(),
            *argv_builder.proc_layout(argv_builder.host_proc_layout()),
            *argv_builder.dev_layout(shm_bytes=1024 * 1024),
            "--", "/bin/true",
        ]  # fmt: skip
        try:
            done = subprocess.run(  # noqa: S603 - our own argv
                probe, capture_output=True, text=True, timeout=30, check=False, env=LAUNCHER_ENV
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"bwrap could not be started: {exc}") from exc
        if done.returncode != 0:
            who = f"uid {ids[0]}" if ids else f"uid {os.getuid()}"
            raise SandboxUnavailable(
                f"bwrap cannot create its namespaces as {who} "
                f"(exit {done.returncode}: {done.stderr.strip()}); allow unprivileged user "
                "namespaces (user.max_user_namespaces > 0; on Ubuntu, the bwrap AppArmor "
                "profile)"
            )

    # -- running ----------------------------------------------------------------------

    def _slot_queue(self) -> asyncio.Queue[int]:
        """The run slots of the running event loop (an engine may outlive a loop in tests)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Queue(), loop
            for slot in range(self.concurrency):
                self._slots.put_nowait(slot)
        return self._slots

    async def run(
        self,
        language_id: str,
        program: Program,
        limits: Limits | None = None,
        *,
        compile_limits: CompileLimits | None = None,
        observer: RunObserver | None = None,
        control: RunControl | None = None,
    ) -> Result:
        """Run `program`; every outcome, including timeouts, OOM and cancel, is a Result."""
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
        slots = self._slot_queue()
        slot = await slots.get()
        try:
            run = Run(
                self,
                language,
                program,
                limits,
                compile_limits or self.compile_limits,
                ids=self.ids_for(slot),
                observer=observer,
                control=control,
            )
            return await run.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("sandbox.internal_error", language=language_id)
            return Result(
                status=Status.INTERNAL_ERROR, message=f"sandbox failure: {type(exc).__name__}"
            )
        finally:
            slots.put_nowait(slot)

    # -- clean-up ---------------------------------------------------------------------

    def recycle(self, group: RunGroup) -> None:
        """Return a run's cgroup to the pool once its processes are gone (in background)."""
        manager = self.cgroups
        if manager is not None:
            self._background(self._recycle(manager, group))

    async def _recycle(self, manager: CgroupManager, group: RunGroup) -> None:
        for _ in range(500):  # killed processes are gone within milliseconds; 5 s at most
            if not group.pids() and manager.release(group):
                return
            group.kill_all()
            await asyncio.sleep(0.01)
        log.error("sandbox.cgroup_leak", dirs=[str(d) for d in group.dirs.values()])

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def drain(self) -> None:
        """Wait for background clean-up (tests and shutdown call this)."""
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)

    async def close(self) -> None:
        """At shutdown, after the last run: finish clean-up and remove this process's
        cgroups, so a clean exit leaves nothing behind."""
        await self.drain()
        self.spawner.close()
        self._uids.release()
        if "cgroups" in self.__dict__ and self.cgroups is not None:
            with contextlib.suppress(OSError):
                self.cgroups.close()
