"""Red team: kernel knobs. A hostile program tries to write sysctls (core_pattern above all)
through every path that names them, then crashes to trigger a piped core handler. The host's
values are read before and after, from outside."""

from __future__ import annotations

from pathlib import Path

from coderoom.sandbox import Engine
from tests.sandbox.redteam_support import program

KNOBS = (
    "kernel/core_pattern",
    "kernel/modprobe",
    "kernel/panic_on_oops",
    "kernel/randomize_va_space",
    "vm/overcommit_memory",
    "fs/suid_dumpable",
    "kernel/sysrq",
    "net/ipv4/ip_forward",
)


def host_values() -> dict[str, str]:
    return {
        name: Path("/proc/sys", name).read_text()
        for name in KNOBS
        if Path("/proc/sys", name).exists()
    }


async def test_no_path_to_a_sysctl_is_writable(engine: Engine, tmp_path: Path) -> None:
    before = host_values()
    evidence = tmp_path / "handler-ran"
    paths = [
        f"{prefix}/{name}"
        for name in before
        for prefix in (
            "/proc/sys",
            "/proc/1/root/proc/sys",
            "/proc/self/root/proc/sys",
            "/proc/self/cwd/../proc/sys",
        )
    ]
    writes = "; ".join(f"echo 1 > {p} 2>/dev/null && echo WROTE {p}" for p in paths)
    source = (
        f"{writes}; "
        f"echo '|/bin/sh -c \"touch {evidence}\"' > /proc/sys/kernel/core_pattern 2>/dev/null && echo WROTE; "
        "echo 'c' > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ; "
        "sysctl -w kernel.core_pattern=x 2>/dev/null && echo SYSCTL; "
        "ulimit -c unlimited 2>/dev/null && echo RAISED-CORE; "
        "sleep 10 & kill -SEGV $!; wait; sh -c 'kill -ABRT $$'; echo crashed"
    )
    result = await engine.run("bash", program("bash", source))
    assert result.stdout.splitlines()[-1:] == ["crashed"], result
    for word in ("WROTE", "SYSRQ", "SYSCTL", "RAISED-CORE"):
        assert word not in result.stdout, result.stdout
    assert host_values() == before
    assert not evidence.exists()


async def test_a_crash_leaves_no_core_file_anywhere(engine: Engine) -> None:
    """RLIMIT_CORE is 0 (hard), so a crash writes nothing, however core_pattern reads."""
    source = (
        "ulimit -c; ulimit -Hc; cd /work; sh -c 'kill -SEGV $$'; cd /tmp; sh -c 'kill -QUIT $$'; "
        "ls -A /work /tmp"
    )
    result = await engine.run("bash", program("bash", source))
    lines = result.stdout.split()
    assert lines[:2] == ["0", "0"]
    assert not [word for word in lines if word.startswith("core")], result.stdout
