"""One cgroup per run: memory and process limits, and peak-memory and CPU accounting.

cgroup v2 is used where this process may create child groups with the memory and pids
controllers (a delegated subtree); cgroup v1 where that is what the machine mounts. When
neither works the engine falls back to rlimits and logs a warning once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

ROOT = Path("/sys/fs/cgroup")
GROUP_PREFIX = "coderoom-sandbox"


class CgroupUnavailable(RuntimeError):
    pass


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _own_paths() -> dict[str, str]:
    """controller name → this process's cgroup path ("" key for the v2 unified tree)."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


@dataclass
class RunGroup:
    """The cgroup(s) of one run. `procs_files` are where the launcher writes its pid."""

    version: int
    dirs: dict[str, Path]  # controller ("memory", "pids", "cpuacct" or "v2") → directory

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def set_limits(self, *, memory_bytes: int, processes: int) -> None:
        if self.version == 2:
            d = self.dirs["v2"]
            _write(d / "memory.max", str(memory_bytes))
            with contextlib.suppress(OSError):
                _write(d / "memory.swap.max", "0")
            _write(d / "pids.max", str(processes))
            return
        memory = self.dirs["memory"]
        # memsw must stay >= the memory limit: order the writes by direction.
        memsw = memory / "memory.memsw.limit_in_bytes"
        current = _read_int(memory / "memory.limit_in_bytes") or 0
        order = [memory / "memory.limit_in_bytes", memsw]
        if memory_bytes > current:
            order.reverse()
        for path in order:
            if path.exists():
                _write(path, str(memory_bytes))
        _write(self.dirs["pids"] / "pids.max", str(processes))

    def prepare(self) -> int:
        """Make a (possibly reused) group ready for a run; returns the OOM-kill baseline."""
        if self.version == 1:
            with contextlib.suppress(OSError):
                _write(self.dirs["memory"] / "memory.failcnt", "0")
        self.reset_accounting()
        return self.oom_kills()

    def reset_accounting(self) -> None:
        """Start counting peak memory and CPU afresh (at the start of the run phase)."""
        if self.version == 1:
            with contextlib.suppress(OSError):
                _write(self.dirs["memory"] / "memory.max_usage_in_bytes", "0")
            with contextlib.suppress(OSError):
                _write(self.dirs["cpuacct"] / "cpuacct.usage", "0")
        else:
            with contextlib.suppress(OSError):
                _write(self.dirs["v2"] / "memory.peak", "0")  # Linux 6.12+; else cumulative

    def cpu_ns(self) -> int:
        if self.version == 1:
            return _read_int(self.dirs["cpuacct"] / "cpuacct.usage") or 0
        for line in (self.dirs["v2"] / "cpu.stat").read_text().splitlines():
            if line.startswith("usage_usec"):
                return int(line.split()[1]) * 1000
        return 0

    def peak_memory_bytes(self) -> int | None:
        if self.version == 1:
            return _read_int(self.dirs["memory"] / "memory.max_usage_in_bytes")
        return _read_int(self.dirs["v2"] / "memory.peak")

    def oom_kills(self) -> int:
        if self.version == 1:
            path = self.dirs["memory"] / "memory.oom_control"
            key = "oom_kill"
        else:
            path = self.dirs["v2"] / "memory.events"
            key = "oom_kill"
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except OSError:
            pass
        if self.version == 1:  # older kernels: no oom_kill counter; failcnt is the hint
            return 1 if (_read_int(self.dirs["memory"] / "memory.failcnt") or 0) > 0 else 0
        return 0

    def pids(self) -> list[int]:
        directory = self.dirs["v2"] if self.version == 2 else self.dirs["pids"]
        try:
            return [int(p) for p in (directory / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        if self.version == 2:
            with contextlib.suppress(OSError):
                _write(self.dirs["v2"] / "cgroup.kill", "1")
                return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> bool:
        """Remove the group once empty; False if processes are still in it."""
        removed = True
        for directory in self.dirs.values():
            try:
                directory.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                removed = False
        return removed


def _remove_stale(top: Path) -> None:
    """Remove groups left by processes that are gone (one directory per service process)."""
    for owner in top.iterdir():
        if not owner.is_dir() or not owner.name.isdigit() or Path(f"/proc/{owner.name}").exists():
            continue
        for group in owner.iterdir():
            if group.is_dir():
                with contextlib.suppress(OSError):
                    group.rmdir()
        with contextlib.suppress(OSError):
            owner.rmdir()


@cache
def shared_manager() -> CgroupManager:
    """One manager (and one pool of groups) per process, whatever the number of engines."""
    return CgroupManager.detect()


class CgroupManager:
    """Creates run groups under this process's own cgroup."""

    def __init__(self, version: int, parents: dict[str, Path], pool_size: int = 8) -> None:
        self.version = version
        self.parents = parents
        self.pool_size = pool_size
        self._idle: list[RunGroup] = []

    @classmethod
    def detect(cls) -> CgroupManager:
        """Find a place where run groups can be made, or raise CgroupUnavailable."""
        if (ROOT / "cgroup.controllers").exists():
            return cls._detect_v2()
        return cls._detect_v1()

    @classmethod
    def _detect_v1(cls) -> CgroupManager:
        own = _own_paths()
        parents: dict[str, Path] = {}
        for controller in ("memory", "pids", "cpuacct"):
            mount = ROOT / controller
            if not mount.is_dir() or controller not in own:
                raise CgroupUnavailable(f"cgroup v1 controller {controller!r} is not mounted")
            parent = mount / own[controller].lstrip("/") / GROUP_PREFIX / str(os.getpid())
            try:
                parent.mkdir(parents=True, exist_ok=True)
                _remove_stale(parent.parent)
            except OSError as exc:
                raise CgroupUnavailable(f"cannot create {parent}: {exc.strerror}") from exc
            parents[controller] = parent
        manager = cls(1, parents)
        manager._probe()
        return manager

    @classmethod
    def _detect_v2(cls) -> CgroupManager:
        own = _own_paths().get("", "/")
        base = ROOT / own.lstrip("/")
        top = base / GROUP_PREFIX
        parent = top / str(os.getpid())
        try:
            top.mkdir(exist_ok=True)
            enabled = (top / "cgroup.controllers").read_text().split()
            missing = {"memory", "pids", "cpu"} - set(enabled)
            if missing:
                raise CgroupUnavailable(
                    f"cgroup v2 controllers {sorted(missing)} are not delegated to {base}"
                )
            _write(top / "cgroup.subtree_control", "+memory +pids +cpu")
            _remove_stale(top)
            parent.mkdir(exist_ok=True)
            _write(parent / "cgroup.subtree_control", "+memory +pids +cpu")
        except OSError as exc:
            raise CgroupUnavailable(f"cannot use cgroup v2 at {base}: {exc}") from exc
        manager = cls(2, {"v2": parent})
        manager._probe()
        return manager

    def _probe(self) -> None:
        group = self.create()
        try:
            group.set_limits(memory_bytes=64 * 1024 * 1024, processes=8)
        except OSError as exc:
            raise CgroupUnavailable(f"cannot set cgroup limits: {exc}") from exc
        finally:
            group.remove()

    def acquire(self) -> RunGroup:
        """A run group: an idle one from the pool (mkdir and rmdir of memory cgroups cost
        ~1 ms of kernel time each, on the hot path otherwise), or a new one."""
        return self._idle.pop() if self._idle else self.create()

    def release(self, group: RunGroup) -> bool:
        """Return an empty group to the pool, or remove it when the pool is full. False
        when the kernel still holds it (exiting tasks): try again shortly."""
        if len(self._idle) < self.pool_size:
            self._idle.append(group)
            return True
        return group.remove()

    def create(self) -> RunGroup:
        name = uuid.uuid4().hex
        dirs = {}
        for controller, parent in self.parents.items():
            if not parent.exists():  # removed by close(); this process runs again
                parent.mkdir(parents=True)
                if self.version == 2:
                    _write(parent / "cgroup.subtree_control", "+memory +pids +cpu")
            directory = parent / name
            directory.mkdir()
            dirs[controller] = directory
        return RunGroup(self.version, dirs)

    def close(self) -> None:
        """Remove the pooled groups and this process's own directories (at shutdown; a
        group still in use keeps its parent, and the next start's stale sweep gets it)."""
        while self._idle:
            self._idle.pop().remove()
        for parent in self.parents.values():
            with contextlib.suppress(OSError):
                parent.rmdir()
