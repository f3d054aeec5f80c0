"""Which host uid each run slot executes as, unique across every process on the host.

When the service runs as root, each slot of each engine gets its own uid from the range
[SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_COUNT). Engines are one per process
(`serve --workers N`, workers beside `serve --with-worker`, several services on a host),
so a slot number alone would repeat: two users' runs would share a host uid, and with it
every quota the kernel counts per user (pipe buffer pages, message-queue bytes, inotify
instances). Each engine therefore *claims* its uids host-wide: an exclusive `flock` on one
lock file per uid, held for as long as the engine runs and released by the kernel when the
process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_DIR = Path("/run/coderoom/sandbox-uids")


class UidRangeExhausted(RuntimeError):
    """Every uid of the range is held by another engine on this host."""


class UidClaims:
    """Up to `count` uids from [base, base + size), each held with an flock."""

    def __init__(self, *, base: int, size: int, lock_dir: Path = LOCK_DIR) -> None:
        self.base = base
        self.size = size
        self.lock_dir = lock_dir
        self._held: dict[int, int] = {}  # uid -> the descriptor holding its lock

    @property
    def uids(self) -> list[int]:
        return list(self._held)

    def claim(self, count: int) -> list[int]:
        """Hold `count` uids (more when asked again); raise when the range is full."""
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in range(self.base, self.base + self.size):
            if len(self._held) >= count:
                break
            if uid in self._held:
                continue
            fd = os.open(self.lock_dir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._held[uid] = fd
        if len(self._held) < count:
            raise UidRangeExhausted(
                f"only {len(self._held)} of the {count} sandbox uids needed are free in "
                f"{self.base}..{self.base + self.size - 1}: other coderoom processes hold the "
                "rest; raise SANDBOX_UID_COUNT"
            )
        return self.uids[:count]

    def release(self) -> None:
        for fd in self._held.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._held.clear()
