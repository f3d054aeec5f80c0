"""A hostile program while the service runs as root (CI and `make run` do): the attacks of
issue 11, each of which once worked or could, and must keep failing.

Every test runs a real program in the real sandbox and checks the host, not just the
program's own report, wherever the host can be asked.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from coderoom.sandbox import Engine, Limits, Program, RunControl, Status
from coderoom.sandbox.engine import DEFAULT_UID_BASE

ROOT_ONLY_TABLES = (
    "/proc/kallsyms", "/proc/timer_list", "/proc/slabinfo", "/proc/keys", "/proc/kcore",
    "/proc/sched_debug", "/proc/vmallocinfo", "/proc/iomem", "/proc/modules",
)  # fmt: skip


def sh(source: str, **kwargs: object) -> Program:
    return Program.single("main.sh", source, **kwargs)  # type: ignore[arg-type]


def py(source: str) -> Program:
    return Program.single("main.py", source)


def host_processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def wait_for_host_process(marker: str) -> int:
    async with asyncio.timeout(30):
        while not (pids := host_processes_with(marker)):
            await asyncio.sleep(0.01)
    return pids[0]


async def test_the_sandbox_maps_to_an_unprivileged_host_uid_never_root(engine: Engine) -> None:
    marker = f"uidprobe{uuid.uuid4().hex[:8]}"
    control = RunControl()
    run = asyncio.create_task(engine.run("bash", sh(f"exec -a {marker} sleep 30"), control=control))
    try:
        pid = await wait_for_host_process(marker)
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        uid_map = Path(f"/proc/{pid}/uid_map").read_text().split()
    finally:
        control.cancel()
        await run
    host_uids = {int(value) for value in status["Uid"].split()}
    assert 0 not in host_uids
    if os.geteuid() == 0:  # each concurrent run has its own uid, claimed from the range
        # (other processes on the host may hold the first ones: ours are whichever we got)
        claimed = {engine.ids_for(slot)[0] for slot in range(engine.concurrency)}  # type: ignore[index]
        assert host_uids <= claimed
        assert all(DEFAULT_UID_BASE <= uid < DEFAULT_UID_BASE + engine.uid_count for uid in claimed)
    assert uid_map[1] != "0"
    assert int(status["CapEff"], 16) == 0


async def test_the_uid_map_seen_from_inside_holds_no_root(engine: Engine) -> None:
    result = await engine.run("bash", sh("cat /proc/self/uid_map /proc/self/gid_map; id -u"))
    lines = result.stdout.splitlines()
    for line in lines[:2]:
        inside, outside, count = line.split()
        assert (inside, count) == ("65534", "1")
        assert outside != "0"
    assert lines[2] == "65534"


async def test_sysctls_cannot_be_written_and_the_host_keeps_its_values(engine: Engine) -> None:
    watched = {
        name: Path(f"/proc/sys/{name}").read_text()
        for name in ("kernel/core_pattern", "vm/swappiness", "kernel/panic", "fs/lease-break-time")
    }
    writes = "; ".join(
        f"echo 7 > /proc/sys/{name} 2>/dev/null && echo WROTE {name}" for name in watched
    )
    source = f"{writes}; echo '|/work/pwn %P' > /proc/sys/kernel/core_pattern 2>&1; echo done"
    result = await engine.run("bash", sh(source))
    assert "WROTE" not in result.stdout
    assert "Read-only file system" in result.stderr
    for name, value in watched.items():
        assert Path(f"/proc/sys/{name}").read_text() == value, name


async def test_a_piped_core_handler_never_runs_on_the_host(engine: Engine, tmp_path: Path) -> None:
    """The escape that made the kernel run the program's own script as host root: set
    core_pattern to a pipe into the workspace, then crash. Both halves must fail."""
    evidence = tmp_path / "ran-on-host"
    script = f"#!/bin/sh\ntouch {evidence}\n"
    source = (
        f"printf '%s' '{script}' > /work/handler; chmod +x /work/handler; "
        "echo '|/proc/%P/root/work/handler' > /proc/sys/kernel/core_pattern; "
        "ulimit -c unlimited 2>/dev/null; sleep 10 & kill -SEGV $!; wait; echo crashed"
    )
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    result = await engine.run("bash", sh(source))
    assert result.stdout.strip().endswith("crashed")
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before
    assert not evidence.exists()


@pytest.mark.parametrize("path", ROOT_ONLY_TABLES)
async def test_root_only_kernel_tables_give_nothing(engine: Engine, path: str) -> None:
    result = await engine.run("bash", sh(f"cat {path} 2>/dev/null | head -c 64 | od -c | head -3"))
    assert result.stdout.strip() in ("", "0000000")


async def test_no_sysfs_and_no_cgroupfs_to_reach_a_release_agent(engine: Engine) -> None:
    source = (
        "ls /sys 2>&1; mkdir -p /tmp/cg; "
        "mount -t cgroup -o memory cgroup /tmp/cg 2>&1 && echo MOUNTED; "
        "ls /tmp/cg/release_agent 2>&1; echo done"
    )
    result = await engine.run("bash", sh(source))
    assert "MOUNTED" not in result.stdout
    assert "No such file or directory" in result.stdout  # /sys is not there at all


async def test_only_harmless_device_nodes_exist_and_none_can_be_made(engine: Engine) -> None:
    source = (
        "ls /dev; mknod /tmp/sda b 8 0 2>/dev/null && echo MADE; "
        "echo x > /dev/null && echo null-ok; head -c 4 /dev/urandom | wc -c"
    )
    result = await engine.run("bash", sh(source))
    listed = set(result.stdout.split())
    assert "MADE" not in listed
    assert "null-ok" in listed
    assert not listed & {"sda", "vda", "mem", "kmem", "port", "kmsg", "vsock", "fuse", "kvm"}


async def test_setuid_binaries_grant_nothing(engine: Engine) -> None:
    """no_new_privs and nosuid binds: a setuid-root program runs as the caller, and a
    mount through it fails."""
    source = (
        "grep NoNewPrivs /proc/self/status; "
        "for b in /usr/bin/mount /usr/bin/su /usr/bin/newgrp /usr/bin/passwd; do "
        "  [ -u $b ] && echo setuid $b; done; "
        "/usr/bin/mount -t tmpfs none /tmp 2>&1 | head -1; id -u"
    )
    result = await engine.run("bash", sh(source))
    assert "NoNewPrivs:\t1" in result.stdout
    assert result.stdout.splitlines()[-1] == "65534"
    assert "mounted" not in result.stdout.lower() or "only root" in result.stdout.lower()


async def test_only_unix_and_ip_sockets_can_be_opened(engine: Engine) -> None:
    source = (
        "import socket, errno\n"
        "families = {'unix': 1, 'inet': 2, 'inet6': 10, 'netlink': 16, 'packet': 17,\n"
        "            'vsock': 40, 'bluetooth': 31, 'alg': 38, 'xdp': 44, 'can': 29,\n"
        "            'vsock_highbits': 40 | (1 << 32), 'unix_highbits': 1 | (1 << 40)}\n"
        "for name, family in families.items():\n"
        "    import ctypes\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    libc.syscall.restype = ctypes.c_long\n"
        "    fd = libc.syscall(41, ctypes.c_long(family), 2 if name not in ('netlink',) else 3, 0)\n"
        "    print(name, 'ok' if fd >= 0 else errno.errorcode[ctypes.get_errno()])\n"
        "a, b = socket.socketpair(); print('socketpair ok')\n"
    )
    result = await engine.run("python", py(source))
    seen = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert seen.pop("socketpair") == "ok"
    for name in ("unix", "inet", "inet6"):
        assert seen.pop(name) == "ok", name
    assert len(seen) == 9
    assert all(outcome == "EPERM" for outcome in seen.values()), seen


async def test_the_sandbox_init_holds_nothing_the_program_lacks(engine: Engine) -> None:
    """pid 1 is bwrap's reaper. The program may see it (same uid), but it can't be
    ptraced, and it has no capability, no extra descriptor, no seccomp exemption and no
    secret in its environment: taking it over would gain nothing."""
    source = (
        "import ctypes, errno, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('ptrace', libc.ptrace(16, 1, 0, 0), errno.errorcode.get(ctypes.get_errno()))\n"
        "def fields(pid):\n"
        "    keys = ('Uid', 'CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs', 'Seccomp')\n"
        "    lines = open(f'/proc/{pid}/status').read().splitlines()\n"
        "    return {k: v.split() for k, v in (l.split(':', 1) for l in lines) if k in keys}\n"
        "print('same', fields(1) == fields('self'))\n"
        "print('fds', sorted(os.listdir('/proc/1/fd')))\n"
        "print('environ', open('/proc/1/environ', 'rb').read().decode())\n"
    )
    result = await engine.run("python", py(source))
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["ptrace"] == "-1 EPERM"
    assert lines["same"] == "True", result.stdout
    assert set(eval(lines["fds"])) <= {"0", "1", "2", "3", "4"}  # stdio + bwrap's eventfd
    assert lines["environ"].split("\x00")[0] in ("PATH=/usr/bin:/bin", "")
    assert "coderoom-launch" not in result.stdout
    assert "/work/main" not in result.stdout


async def test_command_lines_reveal_no_supervisor_and_no_host_path(engine: Engine) -> None:
    source = (
        "#include <stdio.h>\n#include <dirent.h>\n#include <stdlib.h>\n"
        'int main(void) { DIR *d = opendir("/proc"); struct dirent *e; char p[300]; '
        "while ((e = readdir(d))) { if (e->d_name[0] < '0' || e->d_name[0] > '9') continue; "
        'snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name); FILE *f = fopen(p, "r"); '
        "if (!f) continue; int c; while ((c = fgetc(f)) != EOF) putchar(c ? c : ' '); "
        "putchar('\\n'); fclose(f); } return 0; }\n"
    )
    result = await engine.run("c", Program.single("main.c", source))
    assert result.status is Status.SUCCEEDED, result
    for secret in ("ulimit", "read -r", "coderoom-launch", "/work/main", "--ro-bind", "--seccomp"):
        assert secret not in result.stdout, secret
    assert "bwrap --args" in result.stdout  # pid 1 shows only where its options came from


async def test_programs_start_with_exactly_the_three_standard_descriptors(engine: Engine) -> None:
    inherited_r, inherited_w = os.pipe()  # non-inheritable, but a careless path could leak it
    os.set_inheritable(inherited_r, True)
    try:
        result = await engine.run(
            "python", py("import os\nprint(sorted(int(f) for f in os.listdir('/proc/self/fd')))")
        )
        compiled = await engine.run(
            "c",
            Program.single(
                "main.c",
                "#include <fcntl.h>\n#include <stdio.h>\nint main(void){int n=0;"
                'for(int fd=0;fd<4096;fd++) if(fcntl(fd,F_GETFD)!=-1) n++; printf("%d\\n",n);}',
            ),
        )
    finally:
        os.close(inherited_r)
        os.close(inherited_w)
    assert result.stdout == "[0, 1, 2, 3]\n"  # 3 is the listing's own directory handle
    assert compiled.stdout == "3\n", compiled


async def test_a_compiler_flooding_its_output_is_stopped_and_keeps_the_first_bytes(
    engine: Engine,
) -> None:
    body = "".join(f"int v{i} = undefined_{i};\n" for i in range(20_000))
    result = await engine.run("c", Program.single("main.c", body))
    assert result.status is Status.COMPILE_ERROR
    assert result.message is not None
    assert "compiler output exceeded" in result.message
    assert result.compile_output.startswith("main.c:")
    assert result.compile_output.endswith("[compiler output truncated]")
    assert len(result.compile_output.encode()) <= 64 * 1024 + 64


async def test_signals_to_the_sandbox_init_change_nothing_outside(engine: Engine) -> None:
    """The program can signal only its own pid namespace: the host-side launcher and bwrap
    are invisible to it, and the namespace's init ignores what it has no handler for."""
    source = "kill -9 1; kill -STOP 1; kill -9 -1 2>/dev/null; sleep 0.2; echo still here"
    result = await engine.run("bash", sh(source), Limits(wall_time_ms=10_000))
    assert result.status in (Status.SUCCEEDED, Status.FAILED)
    assert result.message is None or "limit" not in result.message
    after = await engine.run("python", py("print('next run fine')"))
    assert after.stdout == "next run fine\n"


async def test_a_syscall_nobody_allowed_answers_enosys(engine: Engine) -> None:
    """The filter is an allow-list: mseal (462), newer than our libseccomp, is not on it,
    so the kernel never sees the call. Listed dangerous calls answer EPERM instead."""
    source = (
        "import ctypes, errno\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for name, nr in (('mseal', 462), ('kcmp', 312), ('getpid', 39)):\n"
        "    rc = libc.syscall(nr, 0, 0, 0, 0, 0)\n"
        "    print(name, 'ok' if rc >= 0 else errno.errorcode[ctypes.get_errno()])\n"
    )
    result = await engine.run("python", py(source))
    seen = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert seen == {"mseal": "ENOSYS", "kcmp": "EPERM", "getpid": "ok"}


async def test_the_32_bit_syscall_abi_kills_the_program(engine: Engine) -> None:
    """`int 0x80` uses the i386 table, where every number means something else: a filter
    written for x86-64 would be bypassed, so any foreign ABI kills the process."""
    source = (
        "#include <stdio.h>\n"
        'int main(void) { long r; puts("before"); fflush(stdout);\n'
        '  __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L));  /* i386 getpid */\n'
        '  printf("after %ld\\n", r); return 0; }\n'
    )
    result = await engine.run("c", Program.single("main.c", source))
    assert result.stdout == "before\n"
    assert result.status is Status.FAILED
    assert result.signal == 31  # SIGSYS
