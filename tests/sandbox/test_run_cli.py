"""`coderoom run` behaves like a Unix tool: stdin, exit status, one-line errors, the verdict
on a line of its own on stderr. Real processes, real sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coderoom.sandbox import Engine

CODEROOM = (sys.executable, "-m", "coderoom")


@pytest.fixture(autouse=True)
def sandbox(engine: Engine) -> None:
    """Every test here runs programs in the real sandbox (skips or fails without it)."""
    del engine


def coderoom(*args: str, stdin: str | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CODEROOM, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def program(tmp_path: Path, text: str, name: str = "main.py") -> str:
    (tmp_path / name).write_text(text)
    return name


def test_the_programs_exit_status_is_passed_through(tmp_path: Path) -> None:
    result = coderoom("run", program(tmp_path, "import sys\nsys.exit(3)\n"), cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].startswith("--- failed exit=3")


def test_a_signal_is_128_plus_its_number(tmp_path: Path) -> None:
    name = program(tmp_path, "import os\nos.kill(os.getpid(), 11)\n")
    assert coderoom("run", name, cwd=tmp_path).returncode == 139


def test_piped_stdin_reaches_the_program(tmp_path: Path) -> None:
    name = program(tmp_path, "import sys\nprint(sys.stdin.read().upper(), end='')\n")
    result = coderoom("run", name, stdin="piped", cwd=tmp_path)
    assert result.stdout == "PIPED"


def test_stdin_dash_reads_this_commands_stdin(tmp_path: Path) -> None:
    name = program(tmp_path, "import sys\nprint(sys.stdin.read().upper(), end='')\n")
    result = coderoom("run", name, "--stdin", "-", stdin="dash", cwd=tmp_path)
    assert result.stdout == "DASH"


def test_stdin_file_overrides_the_pipe(tmp_path: Path) -> None:
    name = program(tmp_path, "import sys\nprint(sys.stdin.read(), end='')\n")
    (tmp_path / "in.txt").write_text("from the file")
    result = coderoom("run", name, "--stdin", "in.txt", stdin="from the pipe", cwd=tmp_path)
    assert result.stdout == "from the file"


def test_a_missing_stdin_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = coderoom("run", program(tmp_path, "print(1)\n"), "--stdin", "nothere", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "coderoom run: cannot read --stdin file nothere: No such file or directory\n"
    )


def test_a_missing_program_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = coderoom("run", "nothere.py", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr == "coderoom run: cannot read program nothere.py: No such file or directory\n"
    )


def test_an_unknown_option_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = coderoom("run", "--bogus", "x.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "coderoom run: No such option: --bogus (see coderoom run --help)\n"


def test_output_without_newline_stays_byte_exact_on_stdout(tmp_path: Path) -> None:
    result = coderoom("run", program(tmp_path, "print('no newline', end='')\n"), cwd=tmp_path)
    assert result.stdout == "no newline"
    assert result.stderr.startswith("--- succeeded")  # separate files: no newline needed


def test_the_verdict_starts_its_own_line_when_both_streams_share_a_file(tmp_path: Path) -> None:
    name = program(tmp_path, "print('no newline', end='')\n")
    with (tmp_path / "both.txt").open("w") as both:
        subprocess.run(
            [*CODEROOM, "run", name],
            stdin=subprocess.DEVNULL,
            stdout=both,
            stderr=both,
            cwd=tmp_path,
            timeout=120,
            check=True,
        )
    lines = (tmp_path / "both.txt").read_text().splitlines()
    assert lines[0] == "no newline"
    assert lines[1].startswith("--- succeeded")


def test_json_prints_the_whole_result_with_the_same_exit_status(tmp_path: Path) -> None:
    name = program(tmp_path, "import sys\nprint('out')\nsys.exit(4)\n")
    result = coderoom("run", name, "--json", cwd=tmp_path)
    assert result.returncode == 4
    body = json.loads(result.stdout)
    assert (body["status"], body["exit_code"], body["stdout"]) == ("failed", 4, "out\n")


def test_version_and_help_are_plain(tmp_path: Path) -> None:
    version = coderoom("--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.startswith("coderoom ")
    helped = coderoom("run", "--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert "<bool>" not in helped.stdout
    assert "╭" not in helped.stdout


def test_languages_lists_what_is_installed(tmp_path: Path) -> None:
    listed = coderoom("languages", "--json", cwd=tmp_path)
    assert listed.returncode == 0
    assert "python" in {row["id"] for row in json.loads(listed.stdout)}
