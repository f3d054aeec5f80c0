"""Every limit of a run, as one typed policy object, and the server-side maxima."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


class LimitsError(ValueError):
    """Requested limits outside what the server allows; `fields` names each one."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.fields = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems.items()))


@dataclass(frozen=True)
class Limits:
    """Limits of the run phase. Times in milliseconds, sizes in the unit their name says."""

    cpu_time_ms: int = 5_000
    wall_time_ms: int = 10_000
    memory_mb: int = 256
    processes: int = 64
    open_files: int = 256
    file_size_kb: int = 16 * 1024
    output_kb: int = 64  # each of stdout and stderr
    workspace_mb: int = 64

    def merged(self, overrides: dict[str, Any] | None) -> Limits:
        """These limits with the caller's overrides, checked against MAXIMA."""
        if not overrides:
            return self
        known = {field.name for field in dataclasses.fields(self)}
        problems = {name: "unknown limit" for name in overrides if name not in known}
        values = {k: v for k, v in overrides.items() if k in known and v is not None}
        candidate = dataclasses.replace(self, **values)
        problems.update(candidate.problems())
        if problems:
            raise LimitsError(problems)
        return candidate

    def problems(self, maxima: Limits | None = None) -> dict[str, str]:
        maxima = maxima or MAXIMA
        found = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            ceiling = getattr(maxima, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                found[field.name] = "must be a positive integer"
            elif value > ceiling:
                found[field.name] = f"must be at most {ceiling}"
        return found

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


#: The most a caller may ask for.
MAXIMA = Limits(
    cpu_time_ms=15_000,
    wall_time_ms=30_000,
    memory_mb=1024,
    processes=256,
    open_files=1024,
    file_size_kb=64 * 1024,
    output_kb=1024,
    workspace_mb=256,
)

DEFAULTS = Limits()


@dataclass(frozen=True)
class CompileLimits:
    """Limits of the compile phase: generous, since compilers are heavy, but bounded."""

    cpu_time_ms: int = 20_000
    wall_time_ms: int = 30_000
    memory_mb: int = 1024
    processes: int = 256
    output_kb: int = 64
