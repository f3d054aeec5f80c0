"""Red team: outliving the run. A hostile program leaves behind everything that might
survive a careless clean-up (new sessions, double forks, stopped processes, zombies,
processes whose pid changes all the time) and the host checks, the moment the run returns,
that none of them is left anywhere."""

from __future__ import annotations

import asyncio
import uuid

from coderoom.sandbox import Engine, Limits, Status
from tests.sandbox.redteam_support import (
    cmdline_has,
    host_pids,
    largest_cgroup_of,
    processes_in_cgroups_of,
    program,
    start,
    wait_for_host_process,
)

LEFTOVERS = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *marker = argv[1];
    /* a stopped process in its own session */
    if (fork() == 0) { setsid(); prctl(PR_SET_NAME, marker); raise(SIGSTOP); for (;;) pause(); }
    /* a double-forked daemon that ignores every signal it can */
    if (fork() == 0) {
        setsid();
        if (fork() == 0) {
            for (int s = 1; s < 65; s++) signal(s, SIG_IGN);
            prctl(PR_SET_NAME, marker);
            char *args[] = {"sleep", "1000", (char *)marker, NULL};
            execvp("sleep", args);
        }
        _exit(0);
    }
    /* zombies nobody reaps */
    for (int i = 0; i < 8; i++) if (fork() == 0) _exit(0);
    /* pid hoppers: each forks its successor and exits, so no pid lives for long */
    for (int i = 0; i < 3; i++) if (fork() == 0) {
        for (;;) { pid_t p = fork(); if (p > 0) _exit(0); if (p < 0) usleep(1000); setsid(); }
    }
    puts("planted"); fflush(stdout);
    pause();
    return 0;
}
"""


def left_behind(engine: Engine, marker: str) -> list[int]:
    marked = [pid for pid in host_pids() if cmdline_has(pid, marker)]
    return marked + processes_in_cgroups_of(engine)


async def test_nothing_survives_a_cancelled_run(engine: Engine) -> None:
    marker = f"stay{uuid.uuid4().hex[:8]}"
    task, watcher, control = start(
        engine, "c", LEFTOVERS, args=(marker,), limits=Limits(processes=64)
    )
    await watcher.until("planted")
    await wait_for_host_process(marker)  # the double-forked daemon is up
    control.cancel()
    result = await task
    assert result.status is Status.CANCELLED
    assert left_behind(engine, marker) == []


async def test_nothing_survives_a_run_that_ends_on_its_own(engine: Engine) -> None:
    marker = f"stay{uuid.uuid4().hex[:8]}"
    result = await engine.run(
        "c", program("c", LEFTOVERS, args=(marker,)), Limits(wall_time_ms=1500, processes=64)
    )
    assert result.status is Status.TIMED_OUT, result
    assert result.stdout == "planted\n"
    assert left_behind(engine, marker) == []  # at once: not after a background sweep
    await engine.drain()
    assert left_behind(engine, marker) == []


async def test_a_fork_bomb_never_exceeds_its_process_limit_on_the_host(engine: Engine) -> None:
    limits = Limits(processes=16, wall_time_ms=2000)
    bound = limits.processes + engine.registry.get("bash").spec.processes_floor + 2  # type: ignore[union-attr]
    task, _watcher, _ = start(engine, "bash", "echo go; :(){ :|:& };:", limits=limits)
    peak = 0
    while not task.done():
        peak = max(peak, largest_cgroup_of(engine))
        await asyncio.sleep(0.005)
    result = await task
    assert result.status in (Status.TIMED_OUT, Status.FAILED, Status.SUCCEEDED), result
    assert 0 < peak <= bound, peak  # pids.max covers bwrap's monitor and init too
    assert processes_in_cgroups_of(engine) == []
