"""The syscall filter handed to bwrap (`--seccomp FD`), compiled with libseccomp.

An allow-list, like Docker's default profile (moby `profiles/seccomp/default.json`, whose
unconditional list `ALLOWED` follows) and nsjail: a syscall nobody listed is refused, so a
kernel that grows a new attack surface does not hand it to strangers' programs. Unlisted
calls answer ENOSYS — "this kernel does not have it" — the one answer libc and language
runtimes already handle by falling back (newer glibc probes `clone3`, `fchmodat2`,
`faccessat2`, `statx` that way). Calls that are dangerous *and* known get an explicit
EPERM, so a test can tell a refusal from an absence.

Departures from Docker's list, all stricter: no `ptrace`/`process_vm_*` (Docker allows
them on new kernels), no io_uring (a steady source of kernel bugs, and Docker dropped it
too), no `clock_adjtime`/`adjtimex`, no `modify_ldt`, no `name_to_handle_at`,
`fanotify_mark` or `mknod*`, no inotify (the bound /usr is the host's: a watch there sees
every other run's opens), and `socket()` only for AF_UNIX, AF_INET and AF_INET6 (Docker
only refuses AF_VSOCK): netlink, packet, vsock, bluetooth and every other family, which a
network namespace does not isolate or which widen the kernel surface, are refused.
`clone` may not create namespaces; `clone3` (whose flags live in memory a filter cannot
read) answers ENOSYS so libc falls back to `clone`. Non-native ABIs (i386 `int 0x80`, x32)
kill the process: they would otherwise bypass every rule.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from functools import cache
from typing import Any

# Docker's unconditional allow-list, minus the departures named above.
ALLOWED = (
    "accept", "accept4", "access", "alarm", "bind", "brk", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_getres", "clock_getres_time64", "clock_gettime",
    "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "io_cancel", "ioctl", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
    "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mkdir", "mkdirat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
    "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat",
    "_newselect", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal",
    "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
    "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease",
    "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64",
    "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
    "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
    "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
    "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "splice", "stat", "stat64",
    "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev", "arch_prctl", "cachestat",
)  # fmt: skip

# Refused with EPERM (not just absent): what escapes and kernel exploits start from.
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "process_madvise", "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "open_tree_attr", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "statmount", "listmount", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "syslog", "userfaultfd", "open_by_handle_at", "name_to_handle_at", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "lookup_dcookie", "settimeofday", "stime",
    "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64", "iopl",
    "ioperm", "vhangup", "modify_ldt", "fanotify_init", "fanotify_mark",
    "sethostname", "setdomainname", "uselib", "ustat", "sysfs", "nfsservctl", "get_mempolicy",
    "set_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy_home_node",
    "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
    # /usr is the host's: inotify reports opens per inode, whatever the namespace, so a
    # watch there would show which files other users' runs (and the host) open.
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
)  # fmt: skip

CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
FILE_TYPE_MASK = 0o170000  # S_IFMT as a mask (Python's stat.S_IFMT is a function)
ALLOWED_SOCKET_FAMILIES = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)
# personality(2) values runtimes use to *query* or keep the default: Docker's list.
ALLOWED_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)


class SeccompUnavailable(RuntimeError):
    pass


def _rules(sc: Any) -> Any:
    """The filter (an allow-list with ENOSYS as the default action); `sc` is pyseccomp,
    imported by the caller so that a missing libseccomp is a clear error, not an import
    failure."""
    rules = sc.SyscallFilter(sc.ERRNO(errno.ENOSYS))
    rules.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)

    def add(action: int, name: str, *args: object) -> None:
        # A name this libseccomp does not know (a syscall newer than it, or another
        # architecture's) is skipped: it falls to the default, ENOSYS. Any other failure
        # (a conflicting rule) is a bug in this table and must not be silenced.
        if sc.resolve_syscall(sc.Arch.NATIVE, name) == -1:
            return
        rules.add_rule(action, name, *args)

    allow = sc.ALLOW
    eperm = sc.ERRNO(errno.EPERM)
    arg, eq, ne, gt = sc.Arg, sc.EQ, sc.NE, sc.GT
    masked_eq = sc.MASKED_EQ
    for name in ALLOWED:
        add(allow, name)
    for name in DENIED:
        add(eperm, name)
    # socket(): allow three families. Every other value — including the allowed ones
    # with junk in the upper 32 bits, which the comparisons see but the kernel ignores —
    # gets EPERM, as the kernel would answer for a forbidden family. All rules here are
    # argument-filtered and mutually exclusive, so their order cannot matter.
    allowed = {int(family) for family in ALLOWED_SOCKET_FAMILIES}
    top = max(allowed)
    for number in range(top + 1):
        add(allow if number in allowed else eperm, "socket", arg(0, eq, number))
    add(eperm, "socket", arg(0, gt, top))
    add(allow, "socketpair", arg(0, eq, socket.AF_UNIX))
    add(eperm, "socketpair", arg(0, ne, socket.AF_UNIX))
    for value in ALLOWED_PERSONALITIES:  # any other persona answers ENOSYS
        add(allow, "personality", arg(0, eq, value))
    # mknod(): FIFOs (mkfifo), sockets and plain files; device nodes get EPERM, as the
    # kernel itself would answer without CAP_MKNOD.
    for name, mode_arg in (("mknod", 1), ("mknodat", 2)):
        for file_type in (stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFREG, 0):
            add(allow, name, arg(mode_arg, masked_eq, FILE_TYPE_MASK, file_type))
        for file_type in (stat.S_IFCHR, stat.S_IFBLK):
            add(eperm, name, arg(mode_arg, masked_eq, FILE_TYPE_MASK, file_type))
    # clone(): allowed without namespace flags, EPERM with any of them.
    mask = 0
    for flag in CLONE_NAMESPACE_FLAGS:
        mask |= flag
        add(eperm, "clone", arg(0, masked_eq, flag, flag))
    add(allow, "clone", arg(0, masked_eq, mask, 0))
    # clone3 is deliberately in neither list: it gets the default, ENOSYS.
    return rules


@cache
def filter_bytes() -> bytes:
    """The compiled BPF program (cached: it is the same for every run)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # libseccomp.so missing
        raise SeccompUnavailable(f"libseccomp is not available: {exc}") from exc
    rules = _rules(seccomp)
    with os.fdopen(os.memfd_create("coderoom-seccomp"), "w+b") as sink:
        rules.export_bpf(sink)
        sink.seek(0)
        return sink.read()
