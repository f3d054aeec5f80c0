"""The syscall filter handed to bwrap (`--seccomp FD`), compiled with libseccomp.

Default allow, deny a list: a deny list keeps every language runtime working (a strict
allow list breaks on each new glibc or JIT) while closing the calls no user program needs
and most kernel exploits start from. Namespace creation is refused both ways it can be
asked for: `unshare`/`setns`, and `clone` with a CLONE_NEW* flag; `clone3` (whose flags
live in memory a filter cannot read) answers ENOSYS so libc falls back to `clone`.
"""

from __future__ import annotations

import errno
import os
from functools import cache

DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "lookup_dcookie",
    "personality",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "iopl",
    "ioperm",
    "vhangup",
)

CLONE_NAMESPACE_FLAGS = (
    0x00000080,  # CLONE_NEWTIME
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)


class SeccompUnavailable(RuntimeError):
    pass


@cache
def filter_bytes() -> bytes:
    """The compiled BPF program (cached: it is the same for every run)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # libseccomp.so missing
        raise SeccompUnavailable(f"libseccomp is not available: {exc}") from exc
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED:
        try:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            continue  # a syscall this architecture does not have
    for flag in CLONE_NAMESPACE_FLAGS:  # rules for one syscall are OR-ed
        rules.add_rule(
            seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag)
        )
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with os.fdopen(os.memfd_create("coderoom-seccomp"), "w+b") as sink:
        rules.export_bpf(sink)
        sink.seek(0)
        return sink.read()
