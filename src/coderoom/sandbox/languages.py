"""The language registry: data describing each runtime, resolved against this machine.

A language is listed only when its runtime is installed. Commands are argv templates, run
without a shell: each element is formatted with the placeholders {exe} (the resolved
runtime or compiler), {entry} (the entry file), {stem} (entry file name without
extension), {memory_mb} and {heap_mb} (the run's memory limit and a heap size that fits
inside it); an element that is exactly "{sources}" becomes every file of the program with
the language's extensions, one argument each.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

import structlog

log = structlog.get_logger(__name__)

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class LanguageSpec:
    id: str
    name: str
    file_name: str
    executables: tuple[str, ...]  # candidates, first found wins
    version_args: tuple[str, ...]
    version_pattern: str
    run: tuple[str, ...]
    compile: tuple[str, ...] | None = None
    extensions: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    etc_binds: tuple[str, ...] = ()  # glob patterns under /etc the runtime reads
    sysroot_args: tuple[str, ...] | None = None  # ask the tool where its toolchain lives
    processes_floor: int = 0  # threads the runtime needs before user code runs


SPECS: tuple[LanguageSpec, ...] = (
    LanguageSpec(
        id="python",
        name="Python",
        file_name="main.py",
        executables=("/usr/bin/python3", "python3"),
        version_args=("--version",),
        version_pattern=r"Python (\S+)",
        run=("{exe}", "-E", "-s", "-B", "{entry}"),
        extensions=(".py",),
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
    ),
    LanguageSpec(
        id="javascript",
        name="JavaScript (Node.js)",
        file_name="main.js",
        executables=("/usr/bin/node", "node", "nodejs"),
        version_args=("--version",),
        version_pattern=r"v?(\S+)",
        run=("{exe}", "--max-old-space-size={heap_mb}", "--stack-size=4096", "{entry}"),
        extensions=(".js", ".mjs", ".cjs"),
        processes_floor=16,
    ),
    LanguageSpec(
        id="c",
        name="C (GCC)",
        file_name="main.c",
        executables=("/usr/bin/gcc", "gcc"),
        version_args=("-dumpfullversion",),
        version_pattern=r"(\S+)",
        compile=("{exe}", "-O2", "-std=gnu17", "-pipe", "-o", "main", "{sources}", "-lm"),
        run=("./main",),
        extensions=(".c",),
    ),
    LanguageSpec(
        id="cpp",
        name="C++ (G++)",
        file_name="main.cpp",
        executables=("/usr/bin/g++", "g++"),
        version_args=("-dumpfullversion",),
        version_pattern=r"(\S+)",
        compile=("{exe}", "-O2", "-std=gnu++17", "-pipe", "-o", "main", "{sources}", "-lm"),
        run=("./main",),
        extensions=(".cpp", ".cc", ".cxx"),
    ),
    LanguageSpec(
        id="java",
        name="Java (OpenJDK)",
        file_name="Main.java",
        executables=("/usr/bin/javac", "javac"),
        version_args=("-version",),
        version_pattern=r"javac (\S+)",
        compile=(
            "{exe}",
            "-J-XX:+UseSerialGC",
            "-J-XX:TieredStopAtLevel=1",
            "-J-Xshare:auto",
            "-J-XX:-UsePerfData",
            "-encoding",
            "UTF-8",
            "-d",
            ".",
            "{sources}",
        ),
        run=(
            "{java}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Xshare:auto",
            "-XX:-UsePerfData",
            "-Xss8m",
            "-XX:MaxRAM={memory_mb}m",
            "-Xmx{heap_mb}m",
            "-cp",
            ".",
            "{stem}",
        ),
        extensions=(".java",),
        etc_binds=("/etc/java-*",),
        processes_floor=32,
    ),
    LanguageSpec(
        id="rust",
        name="Rust",
        file_name="main.rs",
        executables=("rustc",),
        version_args=("--version",),
        version_pattern=r"rustc (\S+)",
        compile=("{exe}", "--edition", "2021", "-C", "opt-level=2", "-o", "main", "{entry}"),
        run=("./main",),
        extensions=(".rs",),
        sysroot_args=("--print", "sysroot"),
    ),
    LanguageSpec(
        id="bash",
        name="Bash",
        file_name="main.sh",
        executables=("/usr/bin/bash", "/bin/bash", "bash"),
        version_args=("--version",),
        version_pattern=r"version (\S+?)(?:\(|\s)",
        run=("{exe}", "{entry}"),
        extensions=(".sh",),
    ),
    LanguageSpec(
        id="perl",
        name="Perl",
        file_name="main.pl",
        executables=("/usr/bin/perl", "perl"),
        version_args=("-e", "print $^V"),
        version_pattern=r"v?(\S+)",
        run=("{exe}", "{entry}"),
        extensions=(".pl", ".pm"),
    ),
)


@dataclass(frozen=True)
class Language:
    """A language whose runtime was found here, ready to be run."""

    spec: LanguageSpec
    version: str
    executable: str
    binds: tuple[str, ...]  # host paths to bind read-only at the same place
    path: str  # PATH inside the sandbox
    extra: Mapping[str, str] = field(default_factory=dict)  # more template values

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def file_name(self) -> str:
        return self.spec.file_name

    @property
    def compiled(self) -> bool:
        return self.spec.compile is not None

    def commands(
        self, *, file_names: Iterable[str], memory_mb: int
    ) -> tuple[list[str] | None, list[str]]:
        """The compile argv (or None) and run argv for a program of these files."""
        names = list(file_names)
        entry = names[0]
        sources = [n for n in names if n.endswith(self.spec.extensions)] or [entry]
        values = {
            "exe": self.executable,
            "entry": entry,
            "stem": PurePosixPath(entry).stem,
            "memory_mb": str(memory_mb),
            "heap_mb": str(max(16, memory_mb * 3 // 4)),
            **self.extra,
        }

        def render(template: tuple[str, ...]) -> list[str]:
            argv: list[str] = []
            for part in template:
                argv += sources if part == "{sources}" else [part.format(**values)]
            return argv

        compile_argv = render(self.spec.compile) if self.spec.compile else None
        return compile_argv, render(self.spec.run)


def _which(candidate: str, extra_path: str) -> str | None:
    if candidate.startswith("/"):
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which(candidate, path=f"{SYSTEM_PATH}:{extra_path}")


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - argv built from the registry, no shell
            argv,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={"PATH": SYSTEM_PATH, "HOME": os.environ.get("HOME", "/")},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout + done.stderr).strip()


def _under_usr(path: str) -> bool:
    return path == "/usr" or path.startswith("/usr/")


def reachable_by_sandbox(path: str) -> bool:
    """Whether a run can be given `path`: runs execute as an unprivileged host uid (their
    own one when we are root, ours otherwise), so every directory on the way must let
    others through and the path itself must be readable by them."""
    target = Path(path)
    if os.geteuid() != 0:
        return os.access(target, os.R_OK | os.X_OK if target.is_dir() else os.R_OK)
    try:
        if not all(parent.stat().st_mode & stat.S_IXOTH for parent in target.parents):
            return False
        mode = target.stat().st_mode
    except OSError:
        return False
    needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & needed == needed


def _resolve(spec: LanguageSpec, extra_path: str) -> Language | None:
    found = next((p for c in spec.executables if (p := _which(c, extra_path))), None)
    if found is None:
        return None
    binds: list[str] = []
    executable = os.path.realpath(found)
    extra: dict[str, str] = {}
    path = SYSTEM_PATH
    if spec.sysroot_args is not None:
        # Toolchain managers (rustup) put proxies on PATH; run the real toolchain instead.
        sysroot = _run([found, *spec.sysroot_args])
        if not sysroot or not Path(sysroot, "bin").is_dir():
            return None
        if not _under_usr(sysroot):
            binds.append(sysroot)
        executable = str(Path(sysroot, "bin", Path(found).name))
        path = f"{sysroot}/bin:{SYSTEM_PATH}"
    if spec.id == "java":
        java = Path(executable).with_name("java")
        if not java.exists():
            return None
        extra["java"] = str(java)
    for pattern in spec.etc_binds:
        binds.extend(str(p) for p in sorted(Path("/").glob(pattern.lstrip("/"))))
    output = _run([executable, *spec.version_args])
    match = re.search(spec.version_pattern, output or "")
    if match is None:
        log.warning("sandbox.language_unusable", language=spec.id, output=output)
        return None
    for bind in (executable,):
        if not _under_usr(bind) and not any(bind.startswith(b) for b in binds):
            binds.append(os.path.dirname(bind))
    unreachable = [b for b in binds if not reachable_by_sandbox(b)]
    if unreachable:
        # Runs execute as an unprivileged host uid: a toolchain under a private directory
        # (rustup in /root) cannot be bound. Install it system-wide instead.
        log.warning(
            "sandbox.language_unreachable",
            language=spec.id,
            paths=unreachable,
            fix="install the runtime system-wide (apt) or under a world-readable prefix",
        )
        return None
    return Language(
        spec=spec,
        version=match.group(1),
        executable=executable,
        binds=tuple(binds),
        path=path,
        extra=extra,
    )


class LanguageRegistry:
    """The languages available on this machine, detected once."""

    def __init__(self, languages: Iterable[Language]) -> None:
        self._languages = {language.id: language for language in languages}

    @classmethod
    def detect(cls, specs: Iterable[LanguageSpec] = SPECS) -> LanguageRegistry:
        extra_path = os.pathsep.join(
            str(p) for p in (Path.home() / ".cargo" / "bin",) if p.is_dir()
        )
        found = [language for spec in specs if (language := _resolve(spec, extra_path))]
        log.info("sandbox.languages", languages={lang.id: lang.version for lang in found})
        return cls(found)

    @staticmethod
    def default() -> LanguageRegistry:
        """This machine's registry, detected once per process (detection runs every
        runtime's version command)."""
        return _default_registry()

    def get(self, language_id: str) -> Language | None:
        return self._languages.get(language_id)

    def ids(self) -> list[str]:
        return sorted(self._languages)

    def __iter__(self) -> Iterator[Language]:
        return iter(self._languages.values())

    def __len__(self) -> int:
        return len(self._languages)


@cache
def _default_registry() -> LanguageRegistry:
    return LanguageRegistry.detect()
