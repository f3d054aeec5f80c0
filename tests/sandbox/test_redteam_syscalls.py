"""Red team: the system call surface. A hostile C program makes raw system calls (no libc
wrapper to second-guess it), with namespace flags, foreign ABIs, junk in the upper bits of
the syscall number and of arguments. Every dangerous call must be refused with a known errno
or kill the process; none may reach the kernel code it targets."""

from __future__ import annotations

from coderoom.sandbox import Engine, Status
from tests.sandbox.redteam_support import program

RAW_CALLS = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long rc) {
    if (rc >= 0) printf("%s ok\n", name);
    else printf("%s %s\n", name, strerrorname_np(errno));
    fflush(stdout);
}
#define TRY(name, ...) do { errno = 0; report(name, syscall(__VA_ARGS__)); } while (0)

int main(void) {
    TRY("keyctl", SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
    TRY("add_key", SYS_add_key, "user", "x", "y", 1, -3);
    TRY("request_key", SYS_request_key, "user", "x", NULL, 0);
    TRY("io_uring_setup", SYS_io_uring_setup, 8, NULL);
    TRY("userfaultfd", SYS_userfaultfd, 0);
    TRY("perf_event_open", SYS_perf_event_open, NULL, 0, -1, -1, 0);
    TRY("bpf", SYS_bpf, 0, NULL, 0);
    TRY("open_by_handle_at", SYS_open_by_handle_at, -100, NULL, 0);
    TRY("setns", SYS_setns, 0, 0);
    TRY("unshare_user", SYS_unshare, 0x10000000);
    TRY("unshare_mount", SYS_unshare, 0x00020000);
    TRY("unshare_net", SYS_unshare, 0x40000000);
    TRY("clone_newuser", SYS_clone, 0x10000000 | SIGCHLD, 0, 0, 0, 0);
    TRY("clone_newpid_highbits", SYS_clone, (1UL << 40) | 0x20000000 | SIGCHLD, 0, 0, 0, 0);
    TRY("clone3", SYS_clone3, NULL, 0);
    TRY("mount", SYS_mount, "none", "/tmp", "tmpfs", 0, NULL);
    TRY("pivot_root", SYS_pivot_root, "/tmp", "/tmp");
    TRY("chroot", SYS_chroot, "/tmp");
    TRY("fsopen", SYS_fsopen, "tmpfs", 0);
    TRY("open_tree", SYS_open_tree, -100, "/", 0);
    TRY("mknod", SYS_mknod, "/tmp/sda", 060600, 0x800);
    TRY("mknodat", SYS_mknodat, -100, "/tmp/mem", 020600, 0x101);
    TRY("modify_ldt", SYS_modify_ldt, 0, NULL, 0);
    TRY("iopl", SYS_iopl, 3);
    TRY("ioperm", SYS_ioperm, 0x80, 1, 1);
    TRY("process_vm_readv", SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0);
    TRY("kcmp", SYS_kcmp, 1, 1, 0, 0, 0);
    TRY("pidfd_getfd", SYS_pidfd_getfd, 0, 0, 0);
    TRY("kexec_load", SYS_kexec_load, 0, 0, NULL, 0);
    TRY("finit_module", SYS_finit_module, 0, "", 0);
    TRY("syslog", SYS_syslog, 3, NULL, 0);
    TRY("acct", SYS_acct, "/tmp/acct");
    TRY("swapon", SYS_swapon, "/tmp/swap", 0);
    TRY("sethostname", SYS_sethostname, "pwned", 5);
    TRY("personality_read_implies_exec", SYS_personality, 0x0400000);
    TRY("personality_no_aslr", SYS_personality, 0x0040000);
    TRY("ptrace_highbits_nr", (1L << 32) | SYS_ptrace, 16 /* ATTACH */, 1, 0, 0);
    TRY("socket_netlink", SYS_socket, 16, 3, 0);
    TRY("socket_packet", SYS_socket, 17, 3, 0);
    TRY("socket_vsock", SYS_socket, 40, 1, 0);
    TRY("socket_alg", SYS_socket, 38, 5, 0);
    TRY("socket_netlink_highbits", SYS_socket, (1UL << 32) | 16, 3, 0);
    TRY("socketpair_netlink", SYS_socketpair, 16, 3, 0, NULL);
    TRY("setuid_0", SYS_setuid, 0);
    TRY("setgroups", SYS_setgroups, 0, NULL);
    TRY("capset_probe", SYS_getpid);
    return 0;
}
"""

EXPECTED = {
    # refused by the filter, with the errno the module promises
    **dict.fromkeys(
        (
            "keyctl",
            "add_key",
            "request_key",
            "io_uring_setup",
            "userfaultfd",
            "perf_event_open",
            "bpf",
            "open_by_handle_at",
            "setns",
            "unshare_user",
            "unshare_mount",
            "unshare_net",
            "clone_newuser",
            "clone_newpid_highbits",
            "mount",
            "pivot_root",
            "chroot",
            "fsopen",
            "open_tree",
            "mknod",
            "mknodat",
            "modify_ldt",
            "iopl",
            "ioperm",
            "process_vm_readv",
            "kcmp",
            "pidfd_getfd",
            "kexec_load",
            "finit_module",
            "syslog",
            "acct",
            "swapon",
            "sethostname",
            "ptrace_highbits_nr",
            "socket_netlink",
            "socket_packet",
            "socket_vsock",
            "socket_alg",
            "socket_netlink_highbits",
            "socketpair_netlink",
            # allowed by the filter, refused by the kernel: no capability in any namespace
            "setgroups",
        ),
        "EPERM",
    ),
    "setuid_0": "EINVAL",  # uid 0 is not even mapped into the sandbox's user namespace
    "clone3": "ENOSYS",  # so libc falls back to clone, whose flags the filter can read
    "personality_read_implies_exec": "ENOSYS",
    "personality_no_aslr": "ENOSYS",
    "capset_probe": "ok",
}


async def test_every_dangerous_raw_syscall_is_refused(engine: Engine) -> None:
    result = await engine.run("c", program("c", RAW_CALLS))
    assert result.status is Status.SUCCEEDED, result
    seen = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert seen == EXPECTED


X32_SYSCALL = r"""
#include <stdio.h>
int main(void) {
    long r;
    puts("before"); fflush(stdout);
    /* the x32 ABI: bit 30 set in the number, audit arch still x86-64 */
    __asm__ volatile ("syscall" : "=a"(r) : "a"(0x40000000L | 101 /* ptrace */)
                      : "rcx", "r11", "memory");
    printf("after %ld\n", r);
    return 0;
}
"""


async def test_the_x32_abi_kills_the_program(engine: Engine) -> None:
    result = await engine.run("c", program("c", X32_SYSCALL))
    assert result.stdout == "before\n"
    assert result.signal == 31  # SIGSYS: the filter's bad-arch action


INT80_SOCKETCALL = r"""
#include <stdio.h>
int main(void) {
    long r; unsigned int args[3] = {16 /* AF_NETLINK */, 3, 0};
    puts("before"); fflush(stdout);
    /* i386 socketcall(SYS_SOCKET, args): a socket() the x86-64 rules never see */
    __asm__ volatile ("int $0x80" : "=a"(r) : "a"(102L), "b"(1L), "c"(args) : "memory");
    printf("after %ld\n", r);
    return 0;
}
"""


async def test_socketcall_through_int_0x80_kills_the_program(engine: Engine) -> None:
    result = await engine.run("c", program("c", INT80_SOCKETCALL))
    assert result.stdout == "before\n"
    assert result.signal == 31
