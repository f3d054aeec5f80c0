"""Shared helpers of the red-team suites (`test_redteam_*.py`): programs, waiting for a
program's words, and looking at the host from outside the sandbox."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from coderoom.sandbox import Engine, OutputStream, Phase, Program, Result, RunControl
from coderoom.sandbox.engine import DEFAULT_UID_BASE

NAMES = {
    "bash": "main.sh",
    "python": "main.py",
    "c": "main.c",
    "cpp": "main.cpp",
    "javascript": "main.js",
    "java": "Main.java",
    "rust": "main.rs",
    "perl": "main.pl",
}


def program(language: str, source: str, **kwargs: object) -> Program:
    return Program.single(NAMES[language], source, **kwargs)  # type: ignore[arg-type]


@dataclass
class Watcher:
    """A RunObserver a test can wait on: `until("text")` returns once the program wrote it."""

    chunks: list[tuple[OutputStream, bytes]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False

    def phase(self, phase: Phase) -> None:
        self.changed.set()

    def output(self, stream: OutputStream, data: bytes) -> None:
        self.chunks.append((stream, data))
        self.changed.set()

    def text(self) -> str:
        return b"".join(d for s, d in self.chunks if s is OutputStream.STDOUT).decode()

    async def until(self, expected: str, deadline: float = 60) -> None:
        """Wait for the program to print `expected`; fail at once if the run ends first."""
        async with asyncio.timeout(deadline):
            while expected not in self.text():
                assert not self.ended, f"the run ended before printing {expected!r}"
                self.changed.clear()
                await self.changed.wait()

    def finished(self, _: object) -> None:
        self.ended = True
        self.changed.set()


def start(
    engine: Engine, language: str, source: str, *, args: tuple[str, ...] = (), **kwargs: object
) -> tuple[asyncio.Task[Result], Watcher, RunControl]:
    """Start a run in the background; the test steers it and waits on what it prints."""
    watcher = Watcher()
    control = RunControl()
    task = asyncio.create_task(
        engine.run(
            language,
            program(language, source, args=args),
            observer=watcher,
            control=control,
            **kwargs,  # type: ignore[arg-type]
        )
    )
    task.add_done_callback(watcher.finished)
    return task, watcher, control


def host_pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def status_of(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def host_uid_of(pid: int) -> int | None:
    uid = status_of(pid).get("Uid")
    return int(uid.split()[0]) if uid else None


def largest_cgroup_of(engine: Engine) -> int:
    """The number of processes in the fullest of this engine's run cgroups."""
    manager = engine.cgroups
    if manager is None:
        return 0
    sizes = [0]
    for parent in manager.parents.values():
        for group in parent.iterdir():
            if group.is_dir():
                sizes.append(len((group / "cgroup.procs").read_text().split()))
    return max(sizes)


def processes_in_cgroups_of(engine: Engine) -> list[int]:
    """Every host process inside one of this engine's run cgroups."""
    manager = engine.cgroups
    if manager is None:
        return []
    found: list[int] = []
    for parent in manager.parents.values():
        for group in parent.iterdir():
            if group.is_dir():
                found += [int(p) for p in (group / "cgroup.procs").read_text().split()]
    return found


def cmdline_has(pid: int, marker: str) -> bool:
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


async def wait_for_host_process(marker: str, deadline: float = 30) -> int:
    async with asyncio.timeout(deadline):
        while True:
            pids = [pid for pid in host_pids() if cmdline_has(pid, marker)]
            if pids:
                return pids[0]
            await asyncio.sleep(0.01)


def sandbox_uid_range(engine: Engine) -> range:
    return range(DEFAULT_UID_BASE, DEFAULT_UID_BASE + engine.concurrency)
