"""Conformance: every language in the registry's data runs real programs in the real sandbox.

One file per language under `conformance/` holds its programs (see README.md there). To
keep the suite lean, one *main* program covers several behaviours in a single run — it
reads a line of stdin, prints its arguments and a line of non-ASCII text, calls a function
from a second file, and exits with status 3 — so each language costs two or three runs:
the main program, a runtime error, and (compiled languages) a compile error. Every run uses
the language's own default limits, so the defaults are proven sufficient.

Under CI every language must be installed (`make runtimes`); elsewhere a language whose
runtime is missing skips with the reason.
"""

from __future__ import annotations

import re
import signal
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from coderoom.sandbox import Engine, Program, ProgramFile, Result, Status
from coderoom.sandbox.languages import Language, shipped_specs
from tests.sandbox.conftest import REGISTRY
from tests.support.services import unavailable

pytestmark = pytest.mark.conformance

CASES = Path(__file__).with_name("conformance")
IDS = sorted(spec.id for spec in shipped_specs())
STDIN = "world\nsecond line\n"
ARGS = ("a", "b c")
EXIT_CODE = 3
LINES = {
    "hello": "hello, world",
    "args": "args: a|b c",
    "unicode": "Grüße, 世界 ✓ 🚀",
    "modules": "twice: 42",
}
BEHAVIOURS = {"stdin", "args", "exit_code", "modules"}


@cache
def case(language_id: str) -> dict[str, Any]:
    path = CASES / f"{language_id}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))


def installed(language_id: str) -> Language:
    language = REGISTRY.get(language_id)
    if language is None:
        unavailable(f"The {language_id} runtime", "not installed: coderoom runtimes install")
    return language


def program(
    language: Language, table: dict[str, Any], *, stdin: str = "", args: tuple[str, ...] = ARGS
) -> Program:
    files: tuple[ProgramFile, ...]
    if "source" in table:
        files = (ProgramFile(language.entry_name(table["source"]), table["source"]),)
    else:
        files = tuple(ProgramFile(f["name"], f["content"]) for f in table["files"])
    return Program(files=files, stdin=stdin, args=args if language.spec.arguments else ())


async def run(engine: Engine, language: Language, prog: Program) -> Result:
    result = await engine.run(
        language.id, prog, language.limits, compile_limits=language.compile_limits
    )
    # The engine recycles the run's cgroup in the background; finish that inside this
    # test's event loop, which closes when the test ends (the engine outlives it).
    await engine.drain()
    return result


def explain(result: Result) -> str:
    return (
        f"status={result.status} exit={result.exit_code} signal={result.signal} "
        f"message={result.message}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        f"\n--- compile\n{result.compile_output}"
    )


def test_every_language_has_a_conformance_file() -> None:
    missing = [i for i in IDS if not (CASES / f"{i}.toml").is_file()]
    stray = sorted({p.stem for p in CASES.glob("*.toml")} - set(IDS))
    assert (missing, stray) == ([], [])


@pytest.mark.parametrize("language_id", IDS)
def test_conformance_files_only_waive_known_behaviours_with_a_reason(language_id: str) -> None:
    waived = case(language_id).get("not_applicable", {})
    assert set(waived) <= BEHAVIOURS
    assert all(isinstance(reason, str) and len(reason) > 10 for reason in waived.values())
    spec = next(s for s in shipped_specs() if s.id == language_id)
    assert ("args" in waived) == (not spec.arguments)
    assert ("compile_error" in case(language_id)) == spec.compiled


@pytest.mark.parametrize("language_id", IDS)
async def test_main_program_reads_stdin_args_prints_unicode_uses_a_module_and_exits(
    engine: Engine, language_id: str
) -> None:
    language = installed(language_id)
    spec = case(language_id)
    waived = spec.get("not_applicable", {})
    main = spec["main"]
    if "modules" not in waived:
        assert len(main.get("files", [])) >= 2, "the main program must span two files"
    result = await run(engine, language, program(language, main, stdin=STDIN))
    expected = [LINES[key] for key in ("hello", "args", "unicode", "modules")]
    if "args" in waived:
        expected.remove(LINES["args"])
    assert result.stdout == "\n".join(expected) + "\n", explain(result)
    code = 0 if "exit_code" in waived else EXIT_CODE
    assert result.exit_code == code, explain(result)
    assert result.status is (Status.SUCCEEDED if code == 0 else Status.FAILED), explain(result)
    assert result.signal is None


@pytest.mark.parametrize("language_id", IDS)
async def test_runtime_error_fails_with_its_message_on_stderr(
    engine: Engine, language_id: str
) -> None:
    language = installed(language_id)
    spec = case(language_id)["runtime_error"]
    result = await run(engine, language, program(language, spec))
    assert result.status is Status.FAILED, explain(result)
    if "signal" in spec:
        assert result.signal == getattr(signal, spec["signal"]), explain(result)
    else:
        assert result.exit_code not in (None, 0), explain(result)
        assert re.search(spec["stderr"], result.stderr), explain(result)


@pytest.mark.parametrize(
    "language_id", [i for i in IDS if next(s for s in shipped_specs() if s.id == i).compiled]
)
async def test_compile_error_is_reported_with_the_compiler_output(
    engine: Engine, language_id: str
) -> None:
    language = installed(language_id)
    spec = case(language_id)["compile_error"]
    result = await run(engine, language, program(language, spec))
    assert result.status is Status.COMPILE_ERROR, explain(result)
    assert re.search(spec["compile_output"], result.compile_output), explain(result)
    assert result.stdout == ""
