"""Red team: /proc as a way out. A hostile program reads and writes every /proc entry of its
own namespace it can name: pid 1's memory, roots, cwds, environments, descriptors and the
mount table. Nothing of the host or the service may come back, and taking over pid 1 must
gain nothing the program did not already have."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coderoom.sandbox import Engine, Status
from tests.sandbox.redteam_support import program

# x86-64: unshare(0); exit_group(<what unshare returned>). Written over pid 1's code at the
# address its blocking syscall returns to, it runs as pid 1 as soon as the program exits.
UNSHARE_THEN_EXIT = "b81001000031ff0f0589c7b8e70000000f05"

TAKE_OVER_PID_1 = f"""
import os, sys
pc = int(open("/proc/1/syscall").read().split()[-1], 16)
try:
    fd = os.open("/proc/1/mem", os.O_RDWR)
    os.lseek(fd, pc, 0)
    os.write(fd, bytes.fromhex("{UNSHARE_THEN_EXIT}"))
except OSError as exc:
    print("refused", exc.errno, flush=True)
    sys.exit(0)
print("patched", flush=True)
sys.exit(3)
"""


async def test_taking_over_pid_1_through_proc_mem_gains_no_privilege(engine: Engine) -> None:
    """pid 1 is bwrap's reaper, same uid as the program, so /proc/1/mem is writable: we
    make it call unshare(0). It must be under the same seccomp filter (EPERM: exit status
    255), never a free process (unshare(0) succeeds: exit status 0)."""
    result = await engine.run("python", program("python", TAKE_OVER_PID_1))
    if result.stdout.startswith("refused"):
        return  # even better: the reaper's memory cannot be written at all
    assert result.stdout == "patched\n", result
    assert result.exit_code == 255, result  # -EPERM from inside pid 1
    assert result.status is Status.FAILED


async def test_every_proc_root_and_cwd_is_the_sandbox_itself(engine: Engine) -> None:
    source = (
        "for p in /proc/[0-9]*; do ls -a $p/root/ 2>&1; readlink $p/cwd $p/root 2>&1; done; "
        "ls /proc/1/root/etc /proc/self/root/etc 2>&1; "
        "cat /proc/1/root/etc/shadow /proc/1/root/etc/passwd 2>&1 | head -c 200"
    )
    result = await engine.run("bash", program("bash", source))
    seen = set(result.stdout.split())
    assert {"home", "root", "var", "boot", "srv", "opt", "sys"}.isdisjoint(seen), seen
    assert "root:x:" not in result.stdout
    assert "shadow" not in seen
    assert "passwd" not in seen


async def test_no_environment_or_command_line_in_proc_holds_the_services_secrets(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = "svc-secret-7c1d9e"
    monkeypatch.setenv("JWT_SECRET", marker)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{marker}@127.0.0.1/db")
    source = (
        "for p in /proc/[0-9]*; do cat $p/environ $p/cmdline 2>&1; echo; done | tr '\\0' ' '; "
        "cat /proc/self/mountinfo"
    )
    result = await engine.run("bash", program("bash", source))
    assert marker not in result.stdout + result.stderr
    assert "coderoom-launch" not in result.stdout
    repo = str(Path(__file__).resolve().parents[2])
    assert repo not in result.stdout  # the service's own tree is neither bound nor named
    assert os.environ["JWT_SECRET"] == marker  # the host side was really set


async def test_pid_1_descriptors_cannot_be_opened_or_listed_as_more_than_stdio(
    engine: Engine,
) -> None:
    source = (
        "import os\n"
        "print(sorted(os.listdir('/proc/1/fd')))\n"
        "for fd in os.listdir('/proc/1/fd'):\n"
        "    try:\n"
        "        print('target', fd, os.readlink(f'/proc/1/fd/{fd}'))\n"
        "        os.open(f'/proc/1/fd/{fd}', os.O_RDONLY); print('OPENED', fd)\n"
        "    except OSError as exc: print('refused', fd, exc.errno)\n"
    )
    result = await engine.run("python", program("python", source))
    assert "OPENED" not in result.stdout, result.stdout
    targets = [
        line.split(" ", 2)[2] for line in result.stdout.splitlines() if line.startswith("target")
    ]
    for target in targets:
        assert target.startswith(("pipe:", "anon_inode:")), targets
