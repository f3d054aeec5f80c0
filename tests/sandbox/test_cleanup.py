"""What a process leaves behind: nothing of the sandbox once it exits cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from coderoom.sandbox import Engine
from tests.support.services import unavailable


def groups_of(engine: Engine, pid: int) -> list[Path]:
    manager = engine.cgroups
    if manager is None:
        unavailable("cgroups", "no usable cgroup hierarchy on this machine")
    assert manager is not None
    return [parent.parent / str(pid) for parent in manager.parents.values()]


def test_a_clean_exit_removes_every_cgroup_of_the_process(engine: Engine, tmp_path: Path) -> None:
    program = tmp_path / "hello.py"
    program.write_text("print('hi')\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "coderoom", "run", str(program)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out == "hi\n"
    leftovers = [group for group in groups_of(engine, process.pid) if group.exists()]
    assert leftovers == []
