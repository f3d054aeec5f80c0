"""What a run produced. A timeout, an OOM kill or an output flood is a result, not an error."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    COMPILE_ERROR = "compile_error"
    TIMED_OUT = "timed_out"
    MEMORY_EXCEEDED = "memory_exceeded"
    OUTPUT_EXCEEDED = "output_exceeded"
    INTERNAL_ERROR = "internal_error"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Result:
    status: Status
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    compile_output: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_time_ms: int | None = None
    cpu_time_ms: int | None = None
    memory_kb: int | None = None
    compile_time_ms: int | None = None  # wall time of the compile phase, compiled languages
    message: str | None = None  # why, for timed_out / memory_exceeded / internal_error


def decode(data: bytes) -> str:
    """Program output as text: UTF-8, invalid bytes replaced, never an exception."""
    return data.decode("utf-8", errors="replace")
