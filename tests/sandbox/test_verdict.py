"""The verdict is a pure function of what the host saw: a table of cases, no sandbox."""

from __future__ import annotations

import signal

import pytest

from coderoom.sandbox.policy import Limits
from coderoom.sandbox.result import Status
from coderoom.sandbox.verdict import Observed, Verdict, decide, exit_status

LIMITS = Limits(cpu_time_ms=1000, memory_mb=64, file_size_kb=16)
KILL = -signal.SIGKILL  # our own SIGKILL of the launcher, as the exit status reads


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (Observed(0, LIMITS), Verdict(Status.SUCCEEDED, 0, None, None)),
        (Observed(3, LIMITS), Verdict(Status.FAILED, 3, None, None)),
        # bwrap reports a signal death of the program as 128+N: one rule for both fields.
        (Observed(128 + 11, LIMITS), Verdict(Status.FAILED, 139, 11, None)),
        (Observed(KILL, LIMITS), Verdict(Status.FAILED, 137, 9, None)),
        (
            Observed(KILL, LIMITS, Status.TIMED_OUT, "wall time limit of 10 ms exceeded"),
            Verdict(Status.TIMED_OUT, 137, 9, "wall time limit of 10 ms exceeded"),
        ),
        (
            Observed(128 + signal.SIGXCPU, LIMITS),
            Verdict(Status.TIMED_OUT, 152, 24, "CPU time limit of 1000 ms exceeded"),
        ),
        (
            Observed(0, LIMITS, cpu_ms=1500),  # the tree used more than a process could see
            Verdict(Status.TIMED_OUT, 0, None, "CPU time limit of 1000 ms exceeded"),
        ),
        (
            Observed(128 + signal.SIGXFSZ, LIMITS),
            Verdict(Status.FAILED, 153, 25, "file size limit of 16 KiB exceeded"),
        ),
        # An OOM kill explains what followed, even a wall-clock timeout...
        (
            Observed(KILL, LIMITS, Status.TIMED_OUT, "wall", oom_killed=True),
            Verdict(Status.MEMORY_EXCEEDED, 137, 9, "memory limit of 64 MiB exceeded"),
        ),
        (
            Observed(1, LIMITS, oom_killed=True),
            Verdict(Status.MEMORY_EXCEEDED, 1, None, "memory limit of 64 MiB exceeded"),
        ),
        # ...but never an output flood, a cancel or a compile-phase kill, which we decided.
        (
            Observed(KILL, LIMITS, Status.OUTPUT_EXCEEDED, "output", oom_killed=True),
            Verdict(Status.OUTPUT_EXCEEDED, 137, 9, "output"),
        ),
        (
            Observed(KILL, LIMITS, Status.CANCELLED, "cancelled by ada", oom_killed=True),
            Verdict(Status.CANCELLED, 137, 9, "cancelled by ada"),
        ),
        (
            Observed(None, LIMITS, Status.CANCELLED, "early"),
            Verdict(Status.CANCELLED, None, None, "early"),
        ),
    ],
)
def test_verdict_table(seen: Observed, expected: Verdict) -> None:
    assert decide(seen) == expected


def test_exit_status_rule_is_one_rule() -> None:
    assert exit_status(None) == (None, None)
    assert exit_status(0) == (0, None)
    assert exit_status(128) == (128, None)  # 128 itself names no signal
    assert exit_status(129) == (129, 1)
    assert exit_status(128 + 64) == (192, 64)
    assert exit_status(193) == (193, None)  # past the last signal: a plain exit code
    assert exit_status(-15) == (143, 15)
