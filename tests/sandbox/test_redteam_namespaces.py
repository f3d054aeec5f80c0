"""Red team: identities and namespaces. A hostile program rewrites its uid/gid maps and
setgroups, makes nested user namespaces every way it can, and runs every setuid binary
under /usr. The host is asked what uid the program really had."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from coderoom.sandbox import Engine
from tests.sandbox.redteam_support import (
    host_uid_of,
    program,
    start,
    status_of,
    wait_for_host_process,
)


async def test_maps_and_setgroups_cannot_be_rewritten(engine: Engine) -> None:
    source = (
        "for f in uid_map gid_map setgroups; do cat /proc/self/$f; done; "
        "echo '0 0 4294967295' > /proc/self/uid_map 2>/dev/null && echo WROTE-UID; "
        "echo '0 0 4294967295' > /proc/self/gid_map 2>/dev/null && echo WROTE-GID; "
        "echo allow > /proc/self/setgroups 2>/dev/null && echo WROTE-SETGROUPS; "
        "echo '0 0 1' > /proc/1/uid_map 2>/dev/null && echo WROTE-PID1; "
        "cat /proc/self/uid_map /proc/self/gid_map"
    )
    result = await engine.run("bash", program("bash", source))
    assert "WROTE" not in result.stdout, result.stdout
    maps = [line.split() for line in result.stdout.splitlines() if len(line.split()) == 3]
    assert maps, result.stdout
    for inside, outside, count in maps:
        assert (inside, count) == ("65534", "1")
        assert outside != "0"


async def test_no_nested_user_namespace_by_any_route(engine: Engine) -> None:
    source = (
        "unshare -U true 2>/dev/null && echo UNSHARE-U; "
        "unshare -Ur id 2>/dev/null && echo UNSHARE-R; "
        "unshare -n true 2>/dev/null && echo UNSHARE-N; "
        "bwrap --ro-bind / / true 2>/dev/null && echo BWRAP; "
        "cat /proc/sys/user/max_user_namespaces; "
        "python3 -c 'import os; os.unshare(os.CLONE_NEWUSER)' 2>/dev/null && echo PY-UNSHARE; "
        "echo done"
    )
    result = await engine.run("bash", program("bash", source))
    lines = result.stdout.split()
    assert lines[-1] == "done"
    for word in ("UNSHARE-U", "UNSHARE-R", "UNSHARE-N", "BWRAP", "PY-UNSHARE"):
        assert word not in lines, result.stdout


# `find /usr -perm /6000` on Debian 12 with the CI packages.
SETUID = (
    "/usr/sbin/unix_chkpwd", "/usr/lib/polkit-1/polkit-agent-helper-1",
    "/usr/lib/x86_64-linux-gnu/utempter/utempter", "/usr/lib/openssh/ssh-keysign",
    "/usr/lib/dbus-1.0/dbus-daemon-launch-helper", "/usr/bin/gpasswd", "/usr/bin/expiry",
    "/usr/bin/newgrp", "/usr/bin/chage", "/usr/bin/chfn", "/usr/bin/umount", "/usr/bin/mount",
    "/usr/bin/passwd", "/usr/bin/chsh", "/usr/bin/su", "/usr/bin/sudo", "/usr/bin/pkexec",
)  # fmt: skip


AGENT = "/usr/bin/ssh-agent"


async def test_setuid_binaries_run_as_the_sandbox_user_and_the_host_agrees(
    engine: Engine,
) -> None:
    """Every setuid/setgid file this host has under /usr is run; none may raise the program's ids, and
    the host sees the long-lived one under an unprivileged uid with no capability."""
    marker = f"setuidprobe{uuid.uuid4().hex[:8]}"
    source = (
        f"for b in {' '.join(SETUID)}; do [ -x $b ] || continue; "
        "  timeout -s KILL 2 $b </dev/null >/dev/null 2>&1; done; "
        "id -u; grep -E '^(NoNewPrivs|CapEff|CapPrm|CapAmb)' /proc/self/status; "
        "echo ready; "
        # setgid _ssh on Debian, and it stays up: the host can look at it
        f"[ -x {AGENT} ] && exec -a {marker} {AGENT} -D -a /tmp/agent.sock; "
        f"exec -a {marker} sleep 30"
    )
    task, watcher, control = start(engine, "bash", source)
    try:
        await watcher.until("ready")
        pid = await wait_for_host_process(marker)
        seen_from_host = status_of(pid)
        host_uid = host_uid_of(pid)
    finally:
        control.cancel()
        result = await task
    assert result.stdout.count("\n") > 0
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    assert lines["NoNewPrivs"].strip() == "1"
    for key in ("CapEff", "CapPrm", "CapAmb"):
        assert int(lines[key], 16) == 0
    assert "65534" in result.stdout.split()
    assert host_uid not in (None, 0)
    assert all(int(v) != 0 for v in seen_from_host["Uid"].split())
    assert all(int(v) != 0 for v in seen_from_host["Gid"].split())
    assert int(seen_from_host["CapEff"], 16) == 0
    assert seen_from_host["Groups"].strip() == ""
    if Path(AGENT).exists():  # the setgid group was not granted either
        granted = Path(AGENT).stat().st_gid
        assert str(granted) not in seen_from_host["Gid"].split()
    assert os.geteuid() == 0 or host_uid == os.geteuid()
