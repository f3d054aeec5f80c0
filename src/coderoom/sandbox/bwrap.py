"""Build the command lines that start a run: a pure function of its inputs.

Two layers of argv:
- the launcher: a tiny host-side shell that puts itself into the run's cgroups, sets the
  rlimits that must hold for everything below, then execs bwrap. Joining the cgroup
  before bwrap exists means no process of the run can ever be outside it.
- bwrap itself, with the in-sandbox supervisor script: compile (output to its own pipe),
  report over the status pipe, wait for the host to switch to run-phase limits, then exec
  the program with the run-phase CPU rlimit.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from coderoom.sandbox.languages import Language
from coderoom.sandbox.policy import CompileLimits, Limits

WORKDIR = "/work"
SANDBOX_UID = 65534
SANDBOX_GID = 65534
HOSTNAME = "coderoom"
# /etc entries runtimes need. Deliberately not passwd, shadow, hosts, resolv.conf.
ETC_BINDS = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")
# bash, not sh: dash only redirects file descriptors 0-9, and ours are numbered by the host.
SHELL = "/bin/bash"
MERGED_USR_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")


@dataclass(frozen=True)
class Fds:
    """File descriptor numbers as the child will see them (pass_fds keeps numbers)."""

    compile_out: int | None
    status: int | None
    ack: int | None
    seccomp: int | None
    files: Sequence[tuple[int, str]]  # (fd, relative name) copied into the workspace


def _root_layout() -> list[str]:
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


def supervisor_script(
    *, compile_cmd: str | None, run_cmd: str, fds: Fds, compile_cpu_s: int, run_cpu_s: int
) -> str:
    """The shell script bwrap runs as the sandbox's first process.

    Interpreted languages start straight under run-phase limits. Compiled ones compile
    first, report over the status pipe and wait for the host to switch the cgroup to
    run-phase limits before the program starts.
    """
    lines = ["set -u"]
    if compile_cmd is not None:
        if fds.compile_out is None or fds.status is None or fds.ack is None:
            raise ValueError("a compiled language needs the compile, status and ack pipes")
        lines += [
            f"( ulimit -t {compile_cpu_s}; {compile_cmd} ) </dev/null >&{fds.compile_out} 2>&1",
            "rc=$?",
            f"exec {fds.compile_out}>&-",
            f'if [ "$rc" -ne 0 ]; then echo "E$rc" >&{fds.status}; exit 0; fi',
            f"echo C >&{fds.status}",
            f"read -r _ <&{fds.ack} || exit 0",  # the host switches limits, then answers
            f"exec {fds.status}>&- {fds.ack}<&-",
        ]
    lines += [f"ulimit -t {run_cpu_s}", f'{run_cmd} "$@"']
    return "\n".join(lines)


def bwrap_argv(
    *,
    bwrap: str,
    language: Language,
    limits: Limits,
    compile_limits: CompileLimits,
    fds: Fds,
    args: Sequence[str],
) -> list[str]:
    compile_cmd, run_cmd = language.commands(
        file_names=[name for _, name in fds.files], memory_mb=limits.memory_mb
    )
    workspace = limits.workspace_mb * 1024 * 1024
    argv = [
        bwrap,
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
        "--setenv",
        "PATH",
        language.path,
        "--setenv",
        "HOME",
        WORKDIR,
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--setenv",
        "TMPDIR",
        "/tmp",
    ]
    for name, value in language.spec.env.items():
        argv += ["--setenv", name, value]
    argv += _root_layout()
    for path in language.binds:
        argv += ["--ro-bind", path, path]
    argv += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(workspace),
        "--tmpfs",
        "/tmp",
        "--size",
        str(workspace),
        "--perms",
        "0777",
        "--tmpfs",
        WORKDIR,
    ]
    made: set[str] = set()
    for fd, name in fds.files:
        for parent in reversed(PurePosixPath(name).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                argv += ["--perms", "0777", "--dir", f"{WORKDIR}/{parent}"]
        argv += ["--perms", "0666", "--file", str(fd), f"{WORKDIR}/{name}"]
    # The root bwrap builds is a tmpfs: make it read-only once everything is in place, so
    # /work and /tmp are the only writable places.
    argv += ["--remount-ro", "/", "--chdir", WORKDIR]
    if fds.seccomp is not None:
        argv += ["--seccomp", str(fds.seccomp)]
    script = supervisor_script(
        compile_cmd=compile_cmd,
        run_cmd=run_cmd,
        fds=fds,
        compile_cpu_s=math.ceil(compile_limits.cpu_time_ms / 1000) + 1,
        run_cpu_s=math.ceil(limits.cpu_time_ms / 1000) + 1,
    )
    # bash only where the script names host-numbered fds (dash stops at 9); sh is faster.
    shell = SHELL if compile_cmd is not None else "/bin/sh"
    argv += ["--", shell, "-c", script, "coderoom", *args]
    return argv


def launcher_argv(
    *, cgroup_procs: Sequence[str], limits: Limits, inner: Sequence[str]
) -> list[str]:
    """Host-side shell: join the cgroups, set rlimits, exec bwrap (exit 125 if it cannot)."""
    joins = "".join(f"echo $$ > {shlex.quote(path)} || exit 125; " for path in cgroup_procs)
    fsize_blocks = limits.file_size_kb * 2  # ulimit -f counts 512-byte blocks
    script = (
        f"{joins}ulimit -c 0 && ulimit -n {limits.open_files} && ulimit -f {fsize_blocks} "
        '|| exit 125; exec "$@"'
    )
    return ["/bin/sh", "-c", script, "coderoom-launcher", *inner]
