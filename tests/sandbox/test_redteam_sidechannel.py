"""Red team: watching other users' runs. Every run binds the host's /usr read-only, so the
inodes a spy sees are the ones every other run (and the service) opens; inotify reports
opens per inode, whatever the mount namespace. A spy must learn nothing of what another
user's program does."""

from __future__ import annotations

from coderoom.sandbox import Engine
from tests.sandbox.redteam_support import program, start

SPY = r"""
import ctypes, os, select, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
wd = libc.inotify_add_watch(fd, b"/usr/lib/python3.11/__pycache__", 0x20) if fd >= 0 else -1
print("watching", fd >= 0 and wd >= 0, flush=True)
seen = set()
while fd >= 0 and wd >= 0 and "stop" not in seen:
    select.select([fd], [], [], 30)
    buf = os.read(fd, 65536)
    i = 0
    while i < len(buf):
        _, _, _, size = struct.unpack_from("iIII", buf, i)
        seen.add(buf[i + 16 : i + 16 + size].rstrip(b"\0").decode().split(".")[0])
        i += 16 + size
    if "wave" in seen:
        break
print(sorted(seen))
"""

# Modules nobody else imports: their names are what the spy would learn.
VICTIM = "import wave, sndhdr, tabnanny\nprint('victim done')\n"


async def test_a_spy_run_cannot_see_which_files_another_run_opens(engine: Engine) -> None:
    spy, watcher, control = start(engine, "python", SPY)
    try:
        await watcher.until("watching")
        victim = await engine.run("python", program("python", VICTIM))
    finally:
        control.cancel()
        result = await spy
    assert victim.stdout == "victim done\n"
    for module in ("wave", "sndhdr", "tabnanny"):
        assert module not in result.stdout, result.stdout
