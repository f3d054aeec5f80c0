"""The sandbox engine: run untrusted programs isolated and bounded, with exact verdicts.

Knows nothing of HTTP, the database or Redis. Layers of defence, outermost first:
bubblewrap namespaces (user, pid, net, ipc, uts, mount) with read-only runtime binds and
size-limited tmpfs workspaces; a seccomp filter; a cgroup per run for memory, processes and
CPU accounting (rlimits where cgroups are not available); rlimits for CPU, files and file
size; and a host-side monitor that enforces wall, CPU and output limits and kills the
whole tree. See docs/SANDBOX.md.
"""

from coderoom.sandbox.control import OutputStream, Phase, RunControl, RunObserver
from coderoom.sandbox.engine import Engine, SandboxUnavailable
from coderoom.sandbox.languages import Language, LanguageRegistry
from coderoom.sandbox.policy import MAXIMA, Limits, LimitsError
from coderoom.sandbox.program import Program, ProgramError, ProgramFile
from coderoom.sandbox.result import Result, Status

__all__ = [
    "MAXIMA",
    "Engine",
    "Language",
    "LanguageRegistry",
    "Limits",
    "LimitsError",
    "OutputStream",
    "Phase",
    "Program",
    "ProgramError",
    "ProgramFile",
    "Result",
    "RunControl",
    "RunObserver",
    "SandboxUnavailable",
    "Status",
]
