"""Programs that try to get out. Each must fail, and the host must not notice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from coderoom.sandbox import Engine, Limits, Program, Status
from tests.support.services import unavailable


def sh(source: str) -> Program:
    return Program.single("main.sh", source)


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


async def test_host_secrets_are_not_visible(engine: Engine, tmp_path: Path) -> None:
    secret_dir = Path.cwd()
    env_file = tmp_path / ".env"
    env_file.write_text("JWT_SECRET=host-secret-value\n")
    source = (
        f"cat /etc/shadow /etc/passwd {env_file} {secret_dir}/coderoom.sqlite3 2>&1; "
        "ls / ; ls /root /home /var 2>&1; cat /proc/1/environ 2>&1 | tr '\\0' '\\n'"
    )
    result = await engine.run("bash", sh(source))
    assert "host-secret-value" not in result.stdout
    assert "root:" not in result.stdout
    listing = set(result.stdout.split())
    assert {"root", "home", "var"}.isdisjoint(listing)


async def test_environment_holds_no_host_variables(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEROOM_TEST_SECRET", "do-not-leak")
    result = await engine.run("bash", sh("env"))
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert "do-not-leak" not in result.stdout
    assert names <= {"PATH", "HOME", "LANG", "TMPDIR", "PWD", "SHLVL", "_"}


async def test_host_filesystem_is_read_only(engine: Engine) -> None:
    source = "for p in /usr/x /etc/x /bin/x /x; do touch $p 2>/dev/null && echo WROTE $p; done; echo done"
    result = await engine.run("bash", sh(source))
    assert result.stdout == "done\n"


async def test_symlinks_lead_nowhere_outside(engine: Engine, tmp_path: Path) -> None:
    target = tmp_path / "host-only.txt"
    target.write_text("host data")
    source = f"ln -s {target} link; cat link 2>&1; ln -s /proc/1/root/etc r; ls r 2>&1 | head -3"
    result = await engine.run("bash", sh(source))
    assert "host data" not in result.stdout
    assert target.read_text() == "host data"


async def test_no_network_not_even_the_service_port(engine: Engine) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = (
        "import socket\n"
        "for host in ('127.0.0.1', '10.0.2.2', '1.1.1.1'):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=1); print('CONNECTED', host)\n"
        "    except OSError as e: print('blocked', host)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 80); print('RESOLVED')\n"
        "except OSError: print('no dns')\n"
    )
    try:
        result = await engine.run("python", py(source))
    finally:
        server.close()
        await server.wait_closed()
    assert "CONNECTED" not in result.stdout
    assert "RESOLVED" not in result.stdout
    assert result.stdout.count("blocked") == 3


async def test_host_processes_are_invisible_and_unkillable(engine: Engine) -> None:
    marker = f"coderoom-victim-{uuid.uuid4().hex}"
    victim = subprocess.Popen(["/bin/bash", "-c", f"exec -a {marker} sleep 60"])
    try:
        result = await engine.run(
            "bash", sh("ls /proc | grep -c '^[0-9]'; kill -9 -1; pkill -9 sleep; echo tried")
        )
        assert victim.poll() is None  # still alive
        assert int(result.stdout.splitlines()[0]) < 10  # only the sandbox's own processes
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


async def test_no_process_outlives_its_run(engine: Engine) -> None:
    marker = uuid.uuid4().hex[:12]
    source = (
        f"(setsid sleep 1000{marker[:3]} &); nohup sleep 999{marker[3:6]} >/dev/null 2>&1 & "
        f"( ( sleep 998{marker[6:9]} & ) & ); disown -a; echo started"
    )
    result = await engine.run("bash", sh(source))
    assert result.stdout == "started\n"
    for fragment in (f"1000{marker[:3]}", f"999{marker[3:6]}", f"998{marker[6:9]}"):
        assert host_processes_with(fragment) == []


async def test_dangerous_syscalls_are_refused(engine: Engine) -> None:
    source = (
        "import ctypes, os, errno\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for name, call in [('ptrace', lambda: libc.ptrace(0, 0, 0, 0)),\n"
        "                   ('unshare', lambda: libc.unshare(0x10000000)),\n"
        "                   ('mount', lambda: libc.mount(b'x', b'/tmp', b'tmpfs', 0, None)),\n"
        "                   ('keyctl', lambda: libc.syscall(250, 0, 0, 0, 0)),\n"
        "                   ('bpf', lambda: libc.syscall(321, 0, 0, 0))]:\n"
        "    rc = call(); print(name, rc, errno.errorcode.get(ctypes.get_errno()))\n"
    )
    result = await engine.run("python", py(source))
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert set(lines) == {"ptrace", "unshare", "mount", "keyctl", "bpf"}
    for name, outcome in lines.items():
        assert outcome.startswith("-1 EPERM"), (name, outcome)


async def test_user_namespaces_cannot_be_nested(engine: Engine) -> None:
    result = await engine.run("bash", sh("unshare -U true 2>&1 && echo ESCAPED || echo refused"))
    assert "ESCAPED" not in result.stdout


async def test_runs_as_an_unprivileged_user(engine: Engine) -> None:
    result = await engine.run("bash", sh("id -u; id -g; cat /proc/self/status | grep CapEff"))
    uid, gid, caps = result.stdout.splitlines()
    assert (uid, gid) == ("65534", "65534")
    assert caps.split()[1] == "0000000000000000"


async def test_runs_leave_no_process_in_any_cgroup(engine: Engine) -> None:
    manager = engine.cgroups
    if manager is None:
        unavailable("cgroups", "no usable cgroup hierarchy on this machine")
    await engine.run("python", py("x = bytearray(2**30)"), Limits(memory_mb=32))
    await engine.run("bash", sh(":(){ :|:& };:"), Limits(wall_time_ms=1000))
    await engine.drain()
    groups = [p for parent in manager.parents.values() for p in parent.iterdir() if p.is_dir()]
    assert all((group / "cgroup.procs").read_text() == "" for group in groups)
    per_controller = len(groups) // len(manager.parents)
    assert per_controller <= manager.pool_size  # recycled, not accumulated


async def test_host_stays_healthy_after_all_that(engine: Engine) -> None:
    result = await engine.run("python", py("print('still fine')"))
    assert result.status is Status.SUCCEEDED
    assert os.getloadavg()[0] >= 0
