"""Every limit of a run, as typed policy objects, and the bounds a caller may ask for.

Three levels, from the most to the least specific:
- a language's defaults and maxima (`Language.limits`, `.maxima`, `.compile_limits`,
  `.compile_maxima`), from the registry's data: a JVM needs more than C;
- the generic defaults and maxima here (`DEFAULTS`, `MAXIMA`, `CompileLimits()`,
  `COMPILE_MAXIMA`), which a language's data starts from;
- the ceilings (`CEILING`, `COMPILE_CEILING`): no language's maxima may exceed them, and
  the engine refuses anything above them whoever asks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self


class LimitsError(ValueError):
    """Requested limits outside what the server allows; `fields` names each one."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.fields = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems.items()))


class _Bounded:
    """Shared checking of a limits dataclass against another instance holding maxima."""

    def merged(self, overrides: dict[str, Any] | None, *, maxima: Self | None = None) -> Self:
        """These limits with the caller's overrides, each checked against `maxima` (the
        ceiling when not given). Unknown names and non-positive values are refused."""
        if not overrides:
            return self
        known = {field.name for field in dataclasses.fields(self)}  # type: ignore[arg-type]
        problems = {name: "unknown limit" for name in overrides if name not in known}
        values = {k: v for k, v in overrides.items() if k in known and v is not None}
        candidate = dataclasses.replace(self, **values)  # type: ignore[type-var]
        problems.update(candidate.problems(maxima))
        if problems:
            raise LimitsError(problems)
        return candidate

    def problems(self, maxima: Self | None = None) -> dict[str, str]:
        ceiling_of = maxima if maxima is not None else self._ceiling()
        found = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            ceiling = getattr(ceiling_of, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                found[field.name] = "must be a positive integer"
            elif value > ceiling:
                found[field.name] = f"must be at most {ceiling}"
        return found

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    def _ceiling(self) -> Self:
        raise NotImplementedError


@dataclass(frozen=True)
class Limits(_Bounded):
    """Limits of the run phase. Times in milliseconds, sizes in the unit their name says."""

    cpu_time_ms: int = 5_000
    wall_time_ms: int = 10_000
    memory_mb: int = 256
    processes: int = 64
    open_files: int = 256
    file_size_kb: int = 16 * 1024
    output_kb: int = 64  # each of stdout and stderr
    workspace_mb: int = 64

    def _ceiling(self) -> Limits:
        return CEILING


@dataclass(frozen=True)
class CompileLimits(_Bounded):
    """Limits of the compile phase: generous, since compilers are heavy, but bounded."""

    cpu_time_ms: int = 20_000
    wall_time_ms: int = 30_000
    memory_mb: int = 1024
    processes: int = 256
    output_kb: int = 64

    def _ceiling(self) -> CompileLimits:
        return COMPILE_CEILING


DEFAULTS = Limits()

#: The most a caller may ask for, unless a language's data says otherwise.
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

#: No language may allow more than this, and the engine runs nothing above it.
CEILING = Limits(
    cpu_time_ms=30_000,
    wall_time_ms=60_000,
    memory_mb=2048,
    processes=512,
    open_files=4096,
    file_size_kb=64 * 1024,
    output_kb=1024,
    workspace_mb=512,
)

COMPILE_DEFAULTS = CompileLimits()

COMPILE_MAXIMA = CompileLimits(
    cpu_time_ms=30_000, wall_time_ms=45_000, memory_mb=2048, processes=512, output_kb=256
)

COMPILE_CEILING = CompileLimits(
    cpu_time_ms=60_000, wall_time_ms=90_000, memory_mb=3072, processes=1024, output_kb=1024
)
