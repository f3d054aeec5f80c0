"""The one list of execution statuses, and the sets derived from it.

An execution is `queued`, then `running`, then ends in one of the sandbox's verdicts
(`sandbox.Status`) or `cancelled`. The database column is constrained to these values
(`ck_executions_status`), and a test checks that every sandbox verdict is a member, so a new
verdict cannot reach the database without being added here first.
"""

from __future__ import annotations

from enum import StrEnum

from coderoom.sandbox import Status as Verdict


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    COMPILE_ERROR = "compile_error"
    TIMED_OUT = "timed_out"
    MEMORY_EXCEEDED = "memory_exceeded"
    OUTPUT_EXCEEDED = "output_exceeded"
    INTERNAL_ERROR = "internal_error"
    CANCELLED = "cancelled"

    @classmethod
    def of(cls, verdict: Verdict) -> ExecutionStatus:
        """The execution status a sandbox verdict ends in."""
        return cls(verdict.value)


#: Still to run or running: counts against the per-user cap, may be cancelled.
ACTIVE: frozenset[ExecutionStatus] = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.RUNNING})
#: Over: the row holds the result and never changes again.
TERMINAL: frozenset[ExecutionStatus] = frozenset(ExecutionStatus) - ACTIVE
