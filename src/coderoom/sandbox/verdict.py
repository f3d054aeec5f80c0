"""The verdict of a run, as a pure function of what the host observed.

One rule for exit status and signal, whatever the verdict: a process that exited has
`exit_code` and no `signal`; one that a signal ended has `signal=N` and `exit_code=128+N`
(what a shell reports as `$?`), so `exit_code` is set whenever the program ended at all.
bubblewrap itself reports a signal death of the program as exit status 128+N, so a status
above 128 is read as that signal (a program that itself exits with 137 reads as SIGKILL:
the two cannot be told apart through bwrap, and the shell convention agrees).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from coderoom.sandbox.policy import Limits
from coderoom.sandbox.result import Status

SIGNAL_BASE = 128
_MAX_SIGNAL = 64


@dataclass(frozen=True)
class Observed:
    """Everything the verdict depends on."""

    returncode: int | None  # as subprocess reports it: -N when our own kill ended it
    limits: Limits
    kill_reason: Status | None = None  # why the engine stopped the run, if it did
    kill_message: str | None = None
    oom_killed: bool = False  # an OOM kill happened in the run's cgroup
    cpu_ms: int | None = None  # CPU time of the whole tree (cgroup), when known


@dataclass(frozen=True)
class Verdict:
    status: Status
    exit_code: int | None
    signal: int | None
    message: str | None


def exit_status(returncode: int | None) -> tuple[int | None, int | None]:
    """(exit_code, signal) under the one rule above."""
    if returncode is None:
        return None, None
    if returncode < 0:
        return SIGNAL_BASE - returncode, -returncode
    if SIGNAL_BASE < returncode <= SIGNAL_BASE + _MAX_SIGNAL:
        return returncode, returncode - SIGNAL_BASE
    return returncode, None


def decide(seen: Observed) -> Verdict:
    exit_code, sig = exit_status(seen.returncode)
    limits = seen.limits

    def verdict(status: Status, message: str | None) -> Verdict:
        return Verdict(status=status, exit_code=exit_code, signal=sig, message=message)

    # Output floods and cancellations are decided by us and stand whatever else happened.
    if seen.kill_reason in (Status.OUTPUT_EXCEEDED, Status.CANCELLED, Status.COMPILE_ERROR):
        return verdict(seen.kill_reason, seen.kill_message)
    # An OOM kill anywhere in the tree explains whatever followed (a parent waiting for a
    # dead child until the wall clock ran out), so it outranks a timeout.
    if seen.oom_killed:
        return verdict(Status.MEMORY_EXCEEDED, f"memory limit of {limits.memory_mb} MiB exceeded")
    if seen.kill_reason is not None:
        return verdict(seen.kill_reason, seen.kill_message)
    if sig == signal.SIGXCPU or (seen.cpu_ms is not None and seen.cpu_ms > limits.cpu_time_ms):
        return verdict(Status.TIMED_OUT, f"CPU time limit of {limits.cpu_time_ms} ms exceeded")
    if sig == signal.SIGXFSZ:
        return verdict(Status.FAILED, f"file size limit of {limits.file_size_kb} KiB exceeded")
    if exit_code == 0:
        return verdict(Status.SUCCEEDED, None)
    return verdict(Status.FAILED, None)
