"""Red team: inputs the API accepts that the sandbox cannot run. Each is a program a user
may send today; each must end in the verdict that describes it (or be refused up front as
bad input), never in an internal error that blames the service, pages its operators (an
ERROR log, a Sentry event) and can be triggered at will."""

from __future__ import annotations

import pytest

from coderoom.sandbox import Engine, Limits, Program, ProgramError, Status
from coderoom.sandbox.program import MAX_FILES, ProgramFile
from tests.sandbox.redteam_support import program

ENTRY = {"python": ("main.py", "print('ran')"), "c": ("main.c", 'int main(void){puts("ran");}')}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_the_largest_program_the_api_accepts_runs(engine: Engine, language: str) -> None:
    """MAX_FILES files pass validation, but the launcher keeps at most 64 descriptors: the
    files plus bwrap's own (args, seccomp; compile, status, ack and script pipes for a
    compiled language) overflow it, and the run dies with 'unknown or repeated option'."""
    name, source = ENTRY[language]
    if language == "c":
        source = "#include <stdio.h>\n" + source
    files = [ProgramFile(name, source)]
    files += [ProgramFile(f"data{i}.txt", "x") for i in range(MAX_FILES - 1)]
    result = await engine.run(language, Program(files=tuple(files)))
    assert result.status is Status.SUCCEEDED, result
    assert result.stdout == "ran\n"


@pytest.mark.parametrize(
    "names", [("a", "a/b"), ("a/b", "a"), ("lib", "lib/x/y.py"), ("d/e", "d/e/f")]
)
def test_a_file_and_a_directory_of_the_same_name_are_refused_up_front(
    names: tuple[str, str],
) -> None:
    """Both names are valid alone; together bwrap cannot lay them out ('Can't mkdir ...:
    Not a directory'), which reads as a failed program, or as an internal error for a
    compiled language."""
    with pytest.raises(ProgramError):
        Program(files=(ProgramFile("main.py", "print(1)"), *(ProgramFile(n, "x") for n in names)))


async def test_a_memory_limit_below_what_compilation_left_behind_is_a_memory_verdict(
    engine: Engine,
) -> None:
    """The run-phase memory limit is written after compiling; the cgroup already holds the
    binary (tmpfs) and the supervisor, so lowering memory.limit_in_bytes below that fails
    with EBUSY, the engine raises, and the user gets internal_error ('sandbox failure:
    OSError') for a limit the API let them choose."""
    source = '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n'
    result = await engine.run("c", program("c", source), Limits(memory_mb=1))
    assert result.status is not Status.INTERNAL_ERROR, result
    assert result.status in (Status.MEMORY_EXCEEDED, Status.SUCCEEDED), result
