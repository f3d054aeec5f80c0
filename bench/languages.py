"""Per-language cost of the sandbox: hello world through the engine vs the same program bare.

For each installed language, the conformance suite's main program (hello + a line of stdin
+ two arguments + a second file; tests/sandbox/conformance/ID.toml) runs, interleaved:
(a) bare: the language's own compile steps and run command (the same argv the sandbox
    uses), straight on the host in a fresh temporary directory: no namespaces, cgroups,
    seccomp, uid drop or limits;
(b) engine: `Engine.run` with the language's default limits: compile and run in one
    sandbox, exactly as an execution runs.
Both include compiling (a compiled language's hello world is mostly its compiler). Prints
the p50 of each and the difference: the sandbox's per-language overhead.

    .venv/bin/python bench/languages.py [--runs 3] [--only python,c,java]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from coderoom.infra.logging import configure_logging
from coderoom.sandbox import Engine, Program, ProgramFile
from coderoom.sandbox.languages import Language, LanguageRegistry

CASES = Path(__file__).parents[1] / "tests" / "sandbox" / "conformance"
STDIN = "world\n"
ARGS = ("a", "b c")


def program(language: Language) -> Program:
    main = tomllib.loads((CASES / f"{language.id}.toml").read_text())["main"]
    if "source" in main:
        files = (ProgramFile(language.entry_name(main["source"]), main["source"]),)
    else:
        files = tuple(ProgramFile(f["name"], f["content"]) for f in main["files"])
    return Program(files=files, stdin=STDIN, args=ARGS if language.spec.arguments else ())


def bare(language: Language, prog: Program) -> float:
    """Compile and run on the host, as the sandbox would inside (same argv, env)."""
    start = time.perf_counter()
    work = tempfile.mkdtemp(prefix="bench-lang-")
    try:
        for file in prog.files:
            path = Path(work, file.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(file.data)
        steps, run = language.commands(
            file_names=[f.name for f in prog.files], memory_mb=language.limits.memory_mb
        )
        tmp = Path(work, ".tmp")
        tmp.mkdir()
        env = {
            "PATH": language.path,
            "HOME": work,
            "LANG": "C.UTF-8",
            "TMPDIR": str(tmp),
            **{k: v.replace("/tmp/", f"{tmp}/") for k, v in language.spec.env.items()},
        }
        for step in steps or []:
            step = [part.replace("/tmp/", f"{tmp}/") for part in step]
            done = subprocess.run(step, cwd=work, env=env, capture_output=True, check=False)
            assert done.returncode == 0, (language.id, done.stdout, done.stderr)
        subprocess.run(
            [*run, *prog.args],
            cwd=work,
            env=env,
            input=prog.stdin.encode(),
            capture_output=True,
            check=False,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return time.perf_counter() - start


async def engine_run(engine: Engine, language: Language, prog: Program) -> float:
    start = time.perf_counter()
    result = await engine.run(
        language.id, prog, language.limits, compile_limits=language.compile_limits
    )
    assert result.stdout.startswith("hello, world"), (language.id, result)
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated language ids")
    options = parser.parse_args()
    configure_logging("WARNING", "console")
    registry = LanguageRegistry.detect()
    wanted = [i for i in options.only.split(",") if i] or registry.ids()
    engine = Engine(registry=registry, concurrency=1)
    engine.check()
    print(f"{'language':<12} {'version':<10} {'bare p50 ms':>12} {'engine p50 ms':>14} "
          f"{'overhead ms':>12}")  # fmt: skip
    rows = []
    for language_id in wanted:
        language = registry.get(language_id)
        if language is None:
            print(f"{language_id:<12} not installed", file=sys.stderr)
            continue
        prog = program(language)
        await engine_run(engine, language, prog)  # warm the page cache for both
        bare_times, engine_times = [], []
        for _ in range(options.runs):
            bare_times.append(await asyncio.to_thread(bare, language, prog))
            engine_times.append(await engine_run(engine, language, prog))
        b, e = statistics.median(bare_times) * 1000, statistics.median(engine_times) * 1000
        rows.append((language.id, e - b))
        print(f"{language.id:<12} {language.version:<10} {b:>12.0f} {e:>14.0f} {e - b:>12.0f}")
    await engine.close()
    overheads = sorted(delta for _, delta in rows)
    if overheads:
        print(
            f"median overhead across {len(rows)} languages: {statistics.median(overheads):.0f} ms"
        )


if __name__ == "__main__":
    os.umask(0o022)
    asyncio.run(main())
