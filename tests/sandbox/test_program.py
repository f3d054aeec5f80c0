"""Programs and limits are validated before anything touches the disk."""

from __future__ import annotations

import pytest

from coderoom.sandbox import MAXIMA, Limits, LimitsError, Program, ProgramError, ProgramFile


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../x.py",
        "a/../../x",
        "",
        "a\\b",
        "x\0y",
        ".",
        "a/./b",
        "-rf",
        "a b.py",
        "a/b/c/d/e.py",
        "x" * 200,
    ],
)
def test_bad_file_names_are_refused(name: str) -> None:
    with pytest.raises(ProgramError):
        Program(files=(ProgramFile(name, "x"),))


def test_good_file_names_pass() -> None:
    program = Program(files=(ProgramFile("main.py", ""), ProgramFile("pkg/util.py", "")))
    assert program.entry.name == "main.py"


def test_duplicate_names_and_empty_programs_are_refused() -> None:
    with pytest.raises(ProgramError):
        Program(files=(ProgramFile("a.py", ""), ProgramFile("a.py", "")))
    with pytest.raises(ProgramError):
        Program(files=())


def test_stdin_is_capped_at_one_mebibyte() -> None:
    Program.single("main.py", "", stdin="x" * 1024 * 1024)
    with pytest.raises(ProgramError, match="stdin"):
        Program.single("main.py", "", stdin="x" * (1024 * 1024 + 1))


def test_limits_over_the_maxima_name_the_field() -> None:
    with pytest.raises(LimitsError) as caught:
        Limits().merged(
            {"memory_mb": MAXIMA.memory_mb + 1, "cpu_time_ms": 0, "bogus": 1}, maxima=MAXIMA
        )
    assert set(caught.value.fields) == {"memory_mb", "cpu_time_ms", "bogus"}


def test_limits_defaults_match_the_documented_ones() -> None:
    limits = Limits()
    assert (limits.cpu_time_ms, limits.wall_time_ms, limits.memory_mb) == (5000, 10000, 256)
    assert (limits.processes, limits.output_kb, limits.workspace_mb) == (64, 64, 64)
    assert (MAXIMA.cpu_time_ms, MAXIMA.wall_time_ms, MAXIMA.memory_mb) == (15000, 30000, 1024)
    assert MAXIMA.output_kb == 1024
