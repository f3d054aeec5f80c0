"""Red team: signals. A hostile program signals its own supervisors (pid 1, the compile
supervisor), every pid number there is, and a concurrent run of another user. The host
checks that the neighbour and the host-side processes were untouched."""

from __future__ import annotations

import signal
import subprocess
import uuid

from coderoom.sandbox import Engine, Limits, Status
from tests.sandbox.redteam_support import program, start

SPRAY = r"""
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    int hits = 0;
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        signal(sig, SIG_IGN);  /* so that our own kill(-1) does not end us first */
    }
    for (int sig = 1; sig < 65; sig++) kill(1, sig);
    for (int pid = 2; pid < 32768; pid++) if (pid != getpid() && kill(pid, SIGKILL) == 0) hits++;
    kill(-1, SIGKILL);
    printf("pids hit: %d\n", hits);
    return 0;
}
"""


async def test_signals_reach_nothing_outside_the_program(engine: Engine) -> None:
    marker = f"bystander{uuid.uuid4().hex[:8]}"
    bystander = subprocess.Popen(["/bin/bash", "-c", f"exec -a {marker} sleep 60"])
    neighbour, seen, control = start(engine, "bash", "echo up; exec sleep 30")
    try:
        await seen.until("up")
        result = await engine.run("c", program("c", SPRAY))
        assert bystander.poll() is None  # a host process, same machine
        assert not neighbour.done()  # another user's run, same engine
        control.cancel()
        other = await neighbour
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()
    assert result.status is Status.SUCCEEDED, result  # pid 1 shrugged everything off
    assert result.stdout == "pids hit: 0\n"
    assert other.status is Status.CANCELLED  # ended by us, not by the spray


async def test_the_compile_supervisor_cannot_be_made_to_report_success(engine: Engine) -> None:
    """During compilation only the compiler runs; afterwards the supervisor has become the
    program. Signalling pid 1 and every parent from the program changes no verdict."""
    source = (
        "#include <signal.h>\n#include <stdio.h>\n#include <unistd.h>\n"
        "int main(void) { kill(getppid(), SIGTERM); kill(1, SIGUSR1); kill(1, SIGTERM);\n"
        '  puts("still here"); return 7; }\n'
    )
    result = await engine.run("c", program("c", source), Limits(wall_time_ms=5000))
    assert result.status is Status.FAILED
    assert result.exit_code == 7
    assert result.stdout == "still here\n"
