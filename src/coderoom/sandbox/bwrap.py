"""Build the command lines that start a run: pure functions of their inputs.

Two layers:
- the launcher (`launcher.c`): joins the run's cgroups, sets the rlimits that must hold for
  everything below, drops to the run's unprivileged host uid, closes every inherited
  descriptor but the ones named, and execs bwrap;
- bwrap, whose options are passed through a memfd (`--args FD`), so the sandbox's pid 1
  shows `bwrap --args N -- COMMAND` and nothing of the layout; the supervisor script of a
  compiled language comes through a memfd too (`bash /proc/self/fd/N`) and closes it.

Interpreted languages: bwrap execs the runtime directly (no shell), under the run-phase CPU
rlimit the launcher set. Compiled languages: bwrap runs a short bash supervisor that
compiles (output to its own pipe), reports over the status pipe, waits for the host to
switch to run-phase limits, then execs the program.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

from coderoom.sandbox.languages import Language
from coderoom.sandbox.policy import CompileLimits, Limits

WORKDIR = "/work"
SANDBOX_UID = 65534  # inside the sandbox; mapped to the run's own unprivileged host uid
SANDBOX_GID = 65534
HOSTNAME = "coderoom"
# /etc entries runtimes need. Deliberately not passwd, shadow, hosts, resolv.conf.
ETC_BINDS = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")
# bash, not sh: dash only redirects file descriptors 0-9, and ours are numbered by the host.
SHELL = "/bin/bash"
MERGED_USR_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
# The device nodes a program may use, bound from the host. No `--dev`: bwrap's devpts
# set-up needs a second, nested user namespace whose map reads "65534 0 1" from inside.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
DEV_LINKS = {
    "/dev/fd": "/proc/self/fd",
    "/dev/stdin": "/proc/self/fd/0",
    "/dev/stdout": "/proc/self/fd/1",
    "/dev/stderr": "/proc/self/fd/2",
}
# Docker's masked and read-only /proc paths (runc defaults), plus the root-only tables.
PROC_MASKED = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/key-users", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi", "/proc/kallsyms", "/proc/slabinfo", "/proc/kpagecount",
    "/proc/kpageflags", "/proc/kpagecgroup", "/proc/vmallocinfo", "/proc/pagetypeinfo",
    "/proc/buddyinfo", "/proc/iomem", "/proc/ioports", "/proc/modules", "/proc/config.gz",
    "/proc/cmdline",  # the host's boot parameters (some clouds put secrets there)
)  # fmt: skip
PROC_READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True)
class ProcLayout:
    """Which of the paths to mask exist on this kernel, and what they are."""

    masked_files: tuple[str, ...]
    masked_dirs: tuple[str, ...]
    read_only: tuple[str, ...]


@cache
def host_proc_layout() -> ProcLayout:
    """The /proc paths this kernel has (bwrap fails on a missing mount point)."""
    files = tuple(p for p in PROC_MASKED if Path(p).is_file())
    dirs = tuple(p for p in PROC_MASKED if Path(p).is_dir())
    read_only = tuple(p for p in PROC_READ_ONLY if Path(p).exists())
    return ProcLayout(masked_files=files, masked_dirs=dirs, read_only=read_only)


@dataclass(frozen=True)
class Fds:
    """File descriptor numbers as the child will see them (they keep their numbers)."""

    compile_out: int | None
    status: int | None
    ack: int | None
    seccomp: int | None
    files: Sequence[tuple[int, str]]  # (fd, relative name) copied into the workspace
    script: int | None = None  # the supervisor script (compiled languages)

    def all(self) -> list[int]:
        named = [self.compile_out, self.status, self.ack, self.seccomp, self.script]
        return [fd for fd in named if fd is not None] + [fd for fd, _ in self.files]


def root_layout() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in MERGED_USR_LINKS:
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_BINDS:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def dev_layout(*, shm_bytes: int) -> list[str]:
    args = ["--perms", "0755", "--tmpfs", "/dev"]
    for device in DEVICES:
        args += ["--dev-bind", device, device]
    for link, target in DEV_LINKS.items():
        args += ["--symlink", target, link]
    args += ["--size", str(shm_bytes), "--perms", "1777", "--tmpfs", "/dev/shm"]
    # bwrap's /dev tmpfs belongs to the sandbox user and has no size: read-only, or a
    # program stores files there past the workspace limit and replaces /dev/stdout.
    # /dev/shm and the device binds are mounts of their own and keep their modes.
    args += ["--remount-ro", "/dev"]
    return args


def proc_layout(layout: ProcLayout) -> list[str]:
    args = ["--proc", "/proc"]
    for path in layout.read_only:
        args += ["--ro-bind", path, path]
    for path in layout.masked_files:
        args += ["--ro-bind", "/dev/null", path]
    for path in layout.masked_dirs:
        args += ["--perms", "0555", "--tmpfs", path, "--remount-ro", path]
    return args


def supervisor_script(
    *, compile_steps: Sequence[Sequence[str]], run_argv: Sequence[str], fds: Fds,
    compile_cpu_s: int, run_cpu_s: int,
) -> str:  # fmt: skip
    """The bash script that drives a compiled language's two phases inside the sandbox.
    Compile steps run in order, each only if the one before succeeded (assemble, link)."""
    if fds.compile_out is None or fds.status is None or fds.ack is None or fds.script is None:
        raise ValueError("a compiled language needs the compile, status, ack and script fds")
    return "\n".join(
        [
            "set -u",
            f"exec {fds.script}<&-",  # bash reads its own copy; the program never sees it
            f"( ulimit -t {compile_cpu_s}; {_steps(compile_steps)} ) "
            f"</dev/null >&{fds.compile_out} 2>&1",
            "rc=$?",
            f"exec {fds.compile_out}>&-",
            f'if [ "$rc" -ne 0 ]; then echo "E$rc" >&{fds.status}; exit 0; fi',
            f"echo C >&{fds.status}",
            f"read -r _ <&{fds.ack} || exit 0",  # the host switches limits, then answers
            f"exec {fds.status}>&- {fds.ack}<&-",
            f"ulimit -t {run_cpu_s}",
            f'exec {shlex.join(run_argv)} "$@"',
        ]
    )


def _steps(steps: Sequence[Sequence[str]]) -> str:
    if not steps:
        raise ValueError("a compiled language needs at least one compile step")
    *first, last = [shlex.join(step) for step in steps]
    return " && ".join([*first, f"exec {last}"])


def cpu_seconds(milliseconds: int) -> int:
    """An RLIMIT_CPU in whole seconds, a little above the limit the host enforces (the host
    watches the whole tree every 20 ms; the rlimit is the per-process backstop)."""
    return math.ceil(milliseconds / 1000) + 1


def bwrap_args(
    *,
    language: Language,
    limits: Limits,
    compile_limits: CompileLimits,
    fds: Fds,
    args: Sequence[str],
    proc: ProcLayout,
    env: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """bwrap's options (to pass through `--args FD`) and the command it runs."""
    compile_argv, run_argv = language.commands(
        file_names=[name for _, name in fds.files], memory_mb=limits.memory_mb
    )
    workspace = limits.workspace_mb * 1024 * 1024
    argv = [
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--disable-userns",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_GID),
        "--hostname",
        HOSTNAME,
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
    ]
    environment = {
        "PATH": language.path,
        "HOME": WORKDIR,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        **language.spec.env,
        **(env or {}),
    }
    for name, value in environment.items():
        argv += ["--setenv", name, value]
    argv += root_layout()
    for path in language.binds:
        argv += ["--ro-bind", path, path]
    argv += proc_layout(proc)
    argv += dev_layout(shm_bytes=workspace)
    argv += ["--size", str(workspace), "--perms", "1777", "--tmpfs", "/tmp"]
    argv += ["--size", str(workspace), "--perms", "0777", "--tmpfs", WORKDIR]
    argv += _workspace_files(fds.files)
    # The root bwrap builds is a tmpfs: make it read-only once everything is in place, so
    # /work, /tmp and /dev/shm are the only writable places.
    argv += ["--remount-ro", "/", "--chdir", WORKDIR]
    if fds.seccomp is not None:
        argv += ["--seccomp", str(fds.seccomp)]
    if compile_argv is None:
        return argv, [*run_argv, *args]
    return argv, [SHELL, f"/proc/self/fd/{fds.script}", *args]


def compiled_script(
    *, language: Language, limits: Limits, compile_limits: CompileLimits, fds: Fds
) -> str:
    """The supervisor script of a compiled language's run (see `supervisor_script`)."""
    compile_argv, run_argv = language.commands(
        file_names=[name for _, name in fds.files], memory_mb=limits.memory_mb
    )
    assert compile_argv is not None
    return supervisor_script(
        compile_steps=compile_argv,
        run_argv=run_argv,
        fds=fds,
        compile_cpu_s=cpu_seconds(compile_limits.cpu_time_ms),
        run_cpu_s=cpu_seconds(limits.cpu_time_ms),
    )


def _workspace_files(files: Iterable[tuple[int, str]]) -> list[str]:
    argv: list[str] = []
    made: set[str] = set()
    for fd, name in files:
        for parent in reversed(PurePosixPath(name).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                argv += ["--perms", "0777", "--dir", f"{WORKDIR}/{parent}"]
        argv += ["--perms", "0666", "--file", str(fd), f"{WORKDIR}/{name}"]
    return argv


@dataclass(frozen=True)
class HostLimits:
    """What the launcher applies before bwrap starts."""

    cpu_s: int  # RLIMIT_CPU for everything in the run (the supervisor lowers it per phase)
    open_files: int
    file_size_kb: int
    # Only without cgroups (rlimit fallback): address space and processes of the run's uid.
    address_space_mb: int | None = None
    processes: int | None = None


def launcher_argv(
    *,
    launcher: str,
    bwrap: str,
    args_fd: int,
    command: Sequence[str],
    keep_fds: Sequence[int],
    cgroup_procs: Sequence[str],
    limits: HostLimits,
    ids: tuple[int, int] | None,
) -> list[str]:
    """The host-side command: launcher options, then bwrap reading its options from a
    memfd, then the command. `ids` is the (uid, gid) to drop to, or None to keep ours
    (we are not root)."""
    argv = [launcher]
    for path in cgroup_procs:
        argv += ["--cgroup", path]
    rlimits = {
        "core": 0,
        # Whatever the service was started with: no real-time scheduling, no higher
        # priority than the host's own processes.
        "rtprio": 0,
        "nice": 0,
        "cpu": limits.cpu_s,
        "nofile": limits.open_files,
        "fsize": limits.file_size_kb * 1024,
    }
    if limits.address_space_mb is not None:
        rlimits["as"] = limits.address_space_mb * 1024 * 1024
    if limits.processes is not None:
        rlimits["nproc"] = limits.processes
    for name, value in rlimits.items():
        argv += ["--rlimit", f"{name}={value}"]
    if ids is not None:
        argv += ["--uid", str(ids[0]), "--gid", str(ids[1])]
    for fd in (args_fd, *keep_fds):
        argv += ["--keep-fd", str(fd)]
    return [*argv, "--", bwrap, "--args", str(args_fd), "--", *command]
