"""Red team: exhausting the host. Memory hidden where a memory limit might not look (tmpfs,
inodes, socket and pipe buffers), CPU spread over many threads, floods of output, oversized
input, and names and layouts of files meant to trip the workspace set-up. Each must end in a
verdict within the limits, with the host's accounting (the run's cgroup) to prove it."""

from __future__ import annotations

import time

import pytest

from coderoom.sandbox import Engine, Limits, Program, ProgramError, Status
from coderoom.sandbox.program import MAX_STDIN_BYTES, ProgramFile
from tests.sandbox.redteam_support import program

HOARD = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char block[65536];

/* Fill socketpairs (mode s) or pipes (mode p) until no more can be made, in 8 processes. */
int main(int argc, char **argv) {
    char mode = argv[1][0];
    for (int p = 0; p < 8; p++) {
        if (fork() != 0) continue;
        long queued = 0;
        for (;;) {
            int sv[2];
            int rc = mode == 's' ? socketpair(AF_UNIX, SOCK_STREAM, 0, sv) : pipe(sv);
            if (rc != 0) break;
            for (int k = 0; k < 2; k++) {
                if (mode == 'p' && k == 0) continue;
                fcntl(sv[k], F_SETFL, O_NONBLOCK);
                if (mode == 'p') fcntl(sv[k], F_SETPIPE_SZ, 1 << 20);
                ssize_t n;
                while ((n = write(sv[k], block, sizeof block)) > 0) queued += n;
            }
        }
        printf("queued %ld\n", queued >> 20);
        fflush(stdout);
        pause();
    }
    while (wait(NULL) > 0) {}
    return 0;
}
"""


@pytest.mark.parametrize("mode", ["sockets", "pipes"])
async def test_kernel_buffers_count_against_the_memory_limit(engine: Engine, mode: str) -> None:
    """Data queued in socket or pipe buffers is kernel memory; it must be charged to the
    run, so 8 processes x 1024 descriptors cannot hold gigabytes of the host's memory."""
    limits = Limits(memory_mb=64, open_files=1024, processes=16, wall_time_ms=5000)
    result = await engine.run("c", program("c", HOARD, args=(mode[0],)), limits)
    held_mb = sum(int(line.split()[1]) for line in result.stdout.splitlines())
    assert result.status is Status.MEMORY_EXCEEDED or held_mb <= 2 * limits.memory_mb, (
        result.status,
        held_mb,
    )
    assert result.memory_kb is not None
    assert result.memory_kb <= limits.memory_mb * 1024


@pytest.mark.parametrize("place", ["/dev/shm", "/tmp", "/work"])
async def test_files_in_memory_filesystems_count_against_the_memory_limit(
    engine: Engine, place: str
) -> None:
    limits = Limits(memory_mb=32, workspace_mb=256)
    source = f"for i in 1 2 3 4 5 6; do head -c 15M /dev/zero > {place}/f$i || exit 3; done"
    result = await engine.run("bash", program("bash", source), limits)
    assert result.status is Status.MEMORY_EXCEEDED, result
    assert result.memory_kb is not None
    assert result.memory_kb <= 32 * 1024


async def test_millions_of_empty_files_count_against_the_memory_limit(engine: Engine) -> None:
    source = (
        "import os\n"
        "for i in range(3_000_000):\n"
        "    os.close(os.open(f'/tmp/{i:0>40}', os.O_CREAT | os.O_WRONLY))\n"
        "print('made them all')\n"
    )
    limits = Limits(memory_mb=32, workspace_mb=256, wall_time_ms=30_000, cpu_time_ms=15_000)
    result = await engine.run("python", program("python", source), limits)
    assert "made them all" not in result.stdout
    assert result.status in (Status.MEMORY_EXCEEDED, Status.FAILED, Status.TIMED_OUT), result
    assert result.memory_kb is not None
    assert result.memory_kb <= 32 * 1024


SPIN = r"""
#include <pthread.h>
static void *spin(void *arg) { volatile unsigned long x = 0; for (;;) x++; return arg; }
int main(void) {
    for (int i = 0; i < 60; i++) { pthread_t t; pthread_create(&t, 0, spin, 0); }
    spin(0);
}
"""


async def test_cpu_spread_over_many_threads_is_stopped_at_the_tree_limit(engine: Engine) -> None:
    limits = Limits(cpu_time_ms=600, processes=64)
    result = await engine.run("c", program("c", SPIN), limits)
    assert result.status is Status.TIMED_OUT, result
    assert result.cpu_time_ms is not None
    assert result.cpu_time_ms < limits.cpu_time_ms + 1000  # the 20 ms watch, with slack


async def test_an_output_flood_is_cut_at_the_cap_and_ends_the_run(engine: Engine) -> None:
    limits = Limits(output_kb=16, wall_time_ms=20_000)
    source = "yes AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA & yes BBBBBBBBBB >&2 & wait"
    started = time.monotonic()
    result = await engine.run("bash", program("bash", source), limits)
    assert result.status is Status.OUTPUT_EXCEEDED
    assert len(result.stdout.encode()) <= 16 * 1024
    assert len(result.stderr.encode()) <= 16 * 1024
    assert time.monotonic() - started < 10  # stopped by the cap, not by the wall clock


async def test_a_program_that_never_reads_a_full_stdin_does_not_stall_the_run(
    engine: Engine,
) -> None:
    stdin = "x" * MAX_STDIN_BYTES
    result = await engine.run(
        "bash", program("bash", "kill -STOP $$", stdin=stdin), Limits(wall_time_ms=1000)
    )
    assert result.status is Status.TIMED_OUT  # stopped itself: the wall clock ends it
    with pytest.raises(ProgramError):
        Program.single("main.sh", "true", stdin=stdin + "x")


@pytest.mark.parametrize(
    "name",
    [
        "../escape.py", "/etc/passwd", "a/../../x", "./main.py", "a//b", "-rf", "@args",
        ".hidden", "a\nb", "a b", "x" * 129, "a/b/c/d/e", "\u0430.py", "a\\..\\b", "",
        "proc/../../x", "..",
    ],
)  # fmt: skip
def test_file_names_that_would_escape_the_workspace_are_refused(name: str) -> None:
    with pytest.raises(ProgramError):
        Program(files=(ProgramFile("main.py", "print(1)"), ProgramFile(name, "x")))


async def test_deep_layouts_with_the_longest_names_still_run(engine: Engine) -> None:
    files = [ProgramFile("main.py", "import os\nprint(sum(len(f) for _, _, f in os.walk('.')))")]
    files += [ProgramFile(f"{'d' * 127}/{'e' * 128}/{'f' * 128}/{i:0>128}", "x") for i in range(16)]
    result = await engine.run("python", Program(files=tuple(files)))
    assert result.status is Status.SUCCEEDED, result
    assert result.stdout == "17\n"
