"""The engine's contract: refuse clearly when it cannot sandbox; the `coderoom run` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coderoom.sandbox import Engine, Program, SandboxUnavailable
from coderoom.sandbox.engine import UnknownLanguage
from tests.sandbox.conftest import REGISTRY


async def test_missing_bwrap_refuses_to_run_anything(tmp_path: Path) -> None:
    engine = Engine(registry=REGISTRY, bwrap=str(tmp_path / "no-bwrap"))
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        await engine.run("python", Program.single("main.py", "print(1)"))


async def test_broken_bwrap_is_reported_not_bypassed(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    engine = Engine(registry=REGISTRY, bwrap=str(fake))
    with pytest.raises(SandboxUnavailable, match="namespace"):
        engine.check()


async def test_unknown_language_lists_the_known_ones(engine: Engine) -> None:
    with pytest.raises(UnknownLanguage, match="python"):
        await engine.run("brainfuck", Program.single("main.bf", ""))


def _coderoom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coderoom", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_run_command_prints_output_and_verdict(engine: Engine, tmp_path: Path) -> None:
    source = tmp_path / "hello.py"
    source.write_text("import sys\nprint('hi', sys.stdin.read().strip())\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("there")
    result = _coderoom("run", str(source), "--stdin", str(stdin))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi there\n"
    assert "succeeded" in result.stderr


def test_run_command_exit_code_is_the_kill_signals(engine: Engine, tmp_path: Path) -> None:
    source = tmp_path / "spin.py"
    source.write_text("while True: pass\n")
    result = _coderoom("run", str(source), "--time-limit", "300", "--json")
    assert result.returncode == 137  # SIGKILL, as a shell reports it
    assert '"status": "timed_out"' in result.stdout
