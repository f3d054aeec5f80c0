"""Red team: two service processes on one host. `coderoom serve --workers N` (and a worker
next to `serve --with-worker`) makes one Engine per process, each numbering its runs' host
uids from the same SANDBOX_UID_BASE: concurrent runs of different users then share a host
uid, and with it every per-user kernel quota. Here two engines in one process stand in for
two service processes (they share nothing but the uid range, exactly as processes do)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coderoom.sandbox import Engine
from tests.sandbox.conftest import REGISTRY
from tests.sandbox.redteam_support import host_uid_of, program, start, wait_for_host_process


@pytest.fixture
async def second_engine() -> AsyncIterator[Engine]:
    """Another service process's engine, configured exactly like the first."""
    other = Engine(registry=REGISTRY, concurrency=1)
    other.check()
    yield other
    await other.close()


async def test_runs_of_two_service_processes_never_share_a_host_uid(
    engine: Engine, second_engine: Engine
) -> None:
    first, _first_seen, first_control = start(engine, "bash", "exec -a uidshareA sleep 30")
    second, _second_seen, second_control = start(
        second_engine, "bash", "exec -a uidshareB sleep 30"
    )
    try:
        uid_a = host_uid_of(await wait_for_host_process("uidshareA"))
        uid_b = host_uid_of(await wait_for_host_process("uidshareB"))
    finally:
        first_control.cancel()
        second_control.cancel()
        await first
        await second
    assert uid_a is not None
    assert uid_b is not None
    assert uid_a != uid_b, f"two concurrent runs of different users both ran as host uid {uid_a}"


# Each hog takes the whole of one per-user quota and holds it; each victim uses one unit.
HOGS = {
    "inotify": (
        "python",
        "import ctypes, time\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "while libc.inotify_init() >= 0: pass\n"
        "print('held', flush=True); time.sleep(30)\n",
    ),
    # pipe buffer sizes count against fs.pipe-user-pages-soft of the host uid (64 MiB);
    # past it, F_SETPIPE_SZ is refused (a reservation: no memory is used)
    "pipe_pages": (
        "python",
        "import fcntl, os, time\n"
        "pipes = []\n"
        "try:\n"
        "    while True:\n"
        "        r, w = os.pipe(); pipes.append((r, w))\n"
        "        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)\n"
        "except OSError: pass\n"
        "print('held', flush=True); time.sleep(30)\n",
    ),
    # queued real-time signals count against RLIMIT_SIGPENDING, per user namespace: this
    # one is not shared (kept as the control case)
    "sigpending": (
        "c",
        "#include <signal.h>\n#include <stdio.h>\n#include <unistd.h>\n"
        "int main(void) { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGRTMIN);\n"
        "  sigprocmask(SIG_BLOCK, &s, 0); union sigval v = {0};\n"
        "  while (sigqueue(getpid(), SIGRTMIN, v) == 0) {}\n"
        '  puts("held"); fflush(stdout); pause(); }\n',
    ),
}
VICTIMS = {
    "inotify": (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('ok' if libc.inotify_init() >= 0 else ctypes.get_errno())\n"
    ),
    "pipe_pages": (
        "import fcntl, os\n"
        "r, w = os.pipe()\n"
        "try:\n"
        "    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20); print('ok')\n"
        "except OSError as exc: print(exc.errno)\n"
    ),
    "sigpending": (
        "import os, signal\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGRTMIN})\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGRTMIN); print('ok')\n"
        "except OSError as exc: print(exc.errno)\n"
    ),
}


@pytest.mark.parametrize("quota", sorted(HOGS))
async def test_one_users_run_cannot_use_up_a_per_user_quota_of_anothers(
    engine: Engine, second_engine: Engine, quota: str
) -> None:
    """Kernel quotas counted per host uid (pipe pages, message-queue bytes; inotify
    instances before the filter refused inotify): a run that takes one whole makes the same
    call fail for a concurrent run of another user that shares its uid."""
    alone = await second_engine.run("python", program("python", VICTIMS[quota]))
    hog, hog_seen, hog_control = start(engine, *HOGS[quota])
    try:
        await hog_seen.until("held")
        beside_the_hog = await second_engine.run("python", program("python", VICTIMS[quota]))
    finally:
        hog_control.cancel()
        await hog
    assert beside_the_hog.stdout == alone.stdout, (beside_the_hog.stdout, alone.stdout)
