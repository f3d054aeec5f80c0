"""Red team: scheduling and resource limits a program inherits. The launcher pins core,
cpu, nofile and fsize; everything else comes from whatever started the service. A program
must not be able to take a real-time class or a higher priority and starve the host (and
the service's own CPU watch) — on this host that holds because root's own RLIMIT_RTPRIO and
RLIMIT_NICE are 0; on a host where the service starts with them raised, this test fails
until the launcher pins them too (see the red-team report)."""

from __future__ import annotations

from coderoom.sandbox import Engine, Limits
from tests.sandbox.redteam_support import program

PROBE = r"""
import os, resource
for name in ("RTPRIO", "NICE", "CORE", "NOFILE", "FSIZE", "RTTIME"):
    print(name, *resource.getrlimit(getattr(resource, "RLIMIT_" + name)))
for policy in ("SCHED_FIFO", "SCHED_RR"):
    try:
        os.sched_setscheduler(0, getattr(os, policy), os.sched_param(1)); print(policy, "GRANTED")
    except OSError as exc:
        print(policy, "refused", exc.errno)
try:
    os.setpriority(os.PRIO_PROCESS, 0, -1); print("NICE-RAISE GRANTED")
except OSError as exc:
    print("nice refused", exc.errno)
"""


async def test_no_real_time_class_and_no_higher_priority(engine: Engine) -> None:
    limits = Limits(open_files=100, file_size_kb=2048)
    result = await engine.run("python", program("python", PROBE), limits)
    seen = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert "GRANTED" not in result.stdout, result.stdout
    assert seen["RTPRIO"][1] == "0"
    assert seen["NICE"][1] == "0"
    assert seen["CORE"] == ["0", "0"]
    assert seen["NOFILE"] == ["100", "100"]
    assert seen["FSIZE"] == [str(2048 * 1024)] * 2
