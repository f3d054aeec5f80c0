"""The documented alternative to root: the whole service as an unprivileged user with a
delegated cgroup subtree. The sandbox keeps every guarantee, mapped to that user's uid.

The test (root, as CI runs) makes a delegated subtree for a fresh uid, moves a child into
it, drops the child to that uid and lets it run the engine; the child prints what its
programs saw, the test checks it from here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from coderoom.sandbox.cgroups import ROOT
from tests.support.server import REPO

SERVICE_UID = 2_100_000_000 + os.getpid() % 1000
SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's interpreter lives under /root (0700)

PROBE = r"""
import asyncio, json, os
from coderoom.sandbox import Engine, Limits, Program, RunControl
MARKER = "unpriv" + "probe"  # spelled apart: this script's own command line holds it too
def host_view(marker):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                status = open(f"/proc/{pid}/status").read().splitlines()
                uid = next(line.split()[1] for line in status if line.startswith("Uid:"))
                return uid, open(f"/proc/{pid}/uid_map").read().split()
        except OSError:
            continue
async def main():
    engine = Engine(concurrency=2)
    engine.check()
    def sh(source):
        return engine.run("bash", Program.single("main.sh", source))
    seen = {}
    r = await sh("cat /proc/self/uid_map; echo 1 > /proc/sys/vm/swappiness; ls /proc/self/fd")
    seen["bash"] = [r.stdout, r.stderr]
    r = await engine.run("python", Program.single("main.py", "x = bytearray(200 << 20)"),
                         Limits(memory_mb=64))
    seen["memory"] = str(r.status)
    control = RunControl()
    run = asyncio.create_task(engine.run(
        "bash", Program.single("main.sh", "exec -a " + MARKER + " sleep 20"), control=control))
    while (view := host_view(MARKER)) is None:
        await asyncio.sleep(0.01)
    seen["host"] = view
    control.cancel()
    await run
    seen["cgroups"] = engine.cgroups.version if engine.cgroups else None
    seen["uid"] = __import__("os").getuid()
    await engine.close()
    print(json.dumps(seen))
asyncio.run(main())
"""


@pytest.fixture
def delegated() -> Iterator[list[Path]]:
    if os.geteuid() != 0:
        pytest.fail("this test makes a delegated cgroup and changes uid: run it as root (CI does)")
    name = f"coderoom-test-{uuid.uuid4().hex[:8]}"
    groups = []
    for controller in ("memory", "pids", "cpuacct"):
        group = ROOT / controller / name
        group.mkdir()
        for entry in [group, *group.iterdir()]:
            os.chown(entry, SERVICE_UID, SERVICE_UID)
        groups.append(group)
    try:
        yield groups
    finally:
        for group in groups:
            for child in sorted(group.rglob("*"), reverse=True):
                if child.is_dir():
                    child.rmdir()
            group.rmdir()


def test_an_unprivileged_service_still_sandboxes_fully(delegated: list[Path]) -> None:
    if not Path(SYSTEM_PYTHON).exists():
        pytest.fail(f"{SYSTEM_PYTHON} is needed to run the engine as another user")
    site = next(Path(REPO, ".venv", "lib").glob("python3*/site-packages"))
    joins = "".join(f'echo $$ > "{group}/cgroup.procs" && ' for group in delegated)
    setpriv = shutil.which("setpriv") or "setpriv"
    done = subprocess.run(
        [
            "/bin/sh", "-c",
            f'{joins}exec {setpriv} --reuid {SERVICE_UID} --regid {SERVICE_UID} --clear-groups '
            f'{SYSTEM_PYTHON} -c "$0"',
            PROBE,
        ],
        env={"PYTHONPATH": f"{REPO / 'src'}:{site}", "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd="/tmp",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["uid"] == SERVICE_UID
    assert seen["cgroups"] == 1 or seen["cgroups"] == 2  # the delegated subtree was used
    stdout, stderr = seen["bash"]
    assert stdout.splitlines()[0].split()[1] != "0"
    host_uid, host_map = seen["host"]
    assert host_uid == str(SERVICE_UID)  # the program runs as the service's own uid
    assert host_map[1] == str(SERVICE_UID)
    assert "Read-only file system" in stderr
    assert stdout.splitlines()[1:] == ["0", "1", "2", "3"]
    assert seen["memory"] == "memory_exceeded"
    assert sys.platform == "linux"
