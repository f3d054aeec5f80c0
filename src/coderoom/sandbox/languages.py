"""The language registry: data describing each runtime, resolved against this machine.

Languages are data (`languages.toml` next to this module, plus any file an operator adds
with LANGUAGES_FILE; see docs/LANGUAGES.md for every field). A language is listed only
when its runtime is installed and the sandbox's unprivileged uid can read it.

Commands are argv templates, run without a shell: each element is formatted with
{exe} (the resolved runtime or compiler), {exe_dir}, each of the language's tools (e.g.
{java}), {entry} (the entry file), {stem} (the entry's name without extension),
{memory_mb} and {heap_mb} (the run's memory limit and a heap that fits inside it). An
element that is exactly "{sources}" becomes every file of the program with the language's
extensions, one argument each, and "{objects}" the same names with ".o" appended; a
compile step holding "{source}" is repeated once per source file.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import structlog

from coderoom.sandbox.policy import (
    CEILING,
    COMPILE_CEILING,
    COMPILE_DEFAULTS,
    COMPILE_MAXIMA,
    DEFAULTS,
    MAXIMA,
    CompileLimits,
    Limits,
    LimitsError,
)

log = structlog.get_logger(__name__)

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
DATA_FILE = Path(__file__).with_name("languages.toml")
#: Where `coderoom runtimes install` puts runtimes that do not come from apt (npm, PyPI):
#: under /usr, so the sandbox's read-only /usr bind already holds them, world-readable.
RUNTIMES_PREFIX = "/usr/local/lib/coderoom/runtimes"
_DETECT_THREADS = 8


class LanguageDataError(ValueError):
    """A language data file is malformed; the message names the file and the entry."""


class LanguageNotFound(LookupError):
    """No language by this id or alias is available here."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(f"unknown language {name!r}; known: {', '.join(self.known)}")


class VersionNotAvailable(LookupError):
    """The language is here, but not in the version asked for."""

    def __init__(self, language: str, requested: str, available: Sequence[str]) -> None:
        self.language = language
        self.requested = requested
        self.available = list(available)
        super().__init__(
            f"{language} {requested} is not installed; available: {', '.join(self.available)}"
        )


@dataclass(frozen=True)
class VersionProbe:
    """How to learn a runtime's version: run a command, or read a path's resolved name or
    a file's text (a versioned jar behind a symlink, or a VERSION file, costs nothing; a
    JVM start costs a second). `path` and `file` may be glob patterns (first match)."""

    command: tuple[str, ...] = ()  # argv template, e.g. ("{exe}", "--version")
    path: str | None = None
    file: str | None = None
    pattern: str = r"(\S+)"


@dataclass(frozen=True)
class Install:
    """What installs the runtime: Debian packages, or a pinned npm / PyPI package put
    under RUNTIMES_PREFIX."""

    apt: tuple[str, ...] = ()
    npm: str | None = None  # a directory under sandbox/runtimes/ with package.json + lock
    pip: str | None = None  # a pinned requirement, e.g. "ziglang==0.13.0"


@dataclass(frozen=True)
class LanguageSpec:
    id: str
    name: str
    file_name: str
    executables: tuple[str, ...]  # candidates, first found wins
    run: tuple[str, ...]
    version: VersionProbe = VersionProbe()
    compile: tuple[tuple[str, ...], ...] | None = None  # steps, run in order
    extensions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    binds: tuple[str, ...] = ()  # glob patterns of host paths the runtime reads
    tools: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # more executables
    sysroot_args: tuple[str, ...] | None = None  # ask the tool where its toolchain lives
    processes_floor: int = 0  # threads the runtime needs before user code runs
    main_pattern: str | None = None  # source → {main} in file_name (Java's public class)
    entry_last: bool = False  # "{sources}" lists the entry file last (OCaml, Fortran)
    arguments: bool = True  # False: the program takes no command-line arguments (SQL)
    limits: Limits = DEFAULTS
    maxima: Limits = MAXIMA
    compile_limits: CompileLimits = COMPILE_DEFAULTS
    compile_maxima: CompileLimits = COMPILE_MAXIMA
    install: Install = Install()
    default: bool = False  # part of the small set `make run` installs
    notes: str = ""

    @property
    def compiled(self) -> bool:
        return self.compile is not None

    def entry_name(self, source: str) -> str:
        """The file name a single `source` is saved under: Java's must be its public
        class's name, so `public class Solution` goes in Solution.java."""
        if "{main}" not in self.file_name:
            return self.file_name
        main = "Main"
        if self.main_pattern and (found := re.search(self.main_pattern, source)):
            main = found.group(1)
        return self.file_name.format(main=main)


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
        return self.spec.entry_name("")

    @property
    def aliases(self) -> tuple[str, ...]:
        return self.spec.aliases

    @property
    def compiled(self) -> bool:
        return self.spec.compiled

    @property
    def limits(self) -> Limits:
        """Default run limits for this language."""
        return self.spec.limits

    @property
    def maxima(self) -> Limits:
        return self.spec.maxima

    @property
    def compile_limits(self) -> CompileLimits:
        return self.spec.compile_limits

    @property
    def compile_maxima(self) -> CompileLimits:
        return self.spec.compile_maxima

    def entry_name(self, source: str) -> str:
        return self.spec.entry_name(source)

    def commands(
        self, *, file_names: Iterable[str], memory_mb: int
    ) -> tuple[list[list[str]] | None, list[str]]:
        """The compile steps (or None) and the run argv for a program of these files."""
        names = list(file_names)
        entry = names[0]
        sources = [n for n in names if n.endswith(self.spec.extensions)] or [entry]
        if self.spec.entry_last and entry in sources:
            sources = [n for n in sources if n != entry] + [entry]
        values = {
            "exe": self.executable,
            "exe_dir": os.path.dirname(self.executable),
            "entry": entry,
            "stem": PurePosixPath(entry).stem,
            "memory_mb": str(memory_mb),
            "heap_mb": str(max(16, memory_mb * 3 // 4)),
            **self.extra,
        }

        def render(template: Sequence[str], **more: str) -> list[str]:
            argv: list[str] = []
            for part in template:
                if part == "{sources}":
                    argv += sources
                elif part == "{objects}":
                    argv += [f"{name}.o" for name in sources]
                else:
                    argv.append(part.format(**values, **more))
            return argv

        steps: list[list[str]] | None = None
        if self.spec.compile is not None:
            steps = []
            for step in self.spec.compile:
                if any("{source}" in part for part in step):
                    steps += [render(step, source=name) for name in sources]
                else:
                    steps.append(render(step))
        return steps, render(self.spec.run)


# -- reading the data -----------------------------------------------------------------

_SPEC_KEYS = {
    "id", "name", "file_name", "executables", "run", "version", "compile", "extensions",
    "aliases", "env", "binds", "tools", "sysroot_args", "processes_floor", "main_pattern",
    "entry_last", "arguments", "limits", "maxima", "compile_limits", "compile_maxima", "install",
    "default", "notes",
}  # fmt: skip
_ID = re.compile(r"[a-z][a-z0-9_+#.-]{0,31}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LanguageDataError(f"{where}: expected a list of strings")
    return tuple(value)


_Limits = TypeVar("_Limits", Limits, CompileLimits)


def _bounded(base: _Limits, overrides: Any, maxima: _Limits, where: str) -> _Limits:
    if overrides is None:
        return base
    if not isinstance(overrides, dict):
        raise LanguageDataError(f"{where}: expected a table of limits")
    try:
        return base.merged(overrides, maxima=maxima)
    except LimitsError as exc:
        raise LanguageDataError(f"{where}: {exc}") from None


def spec_from_data(data: Mapping[str, Any], where: str = "language") -> LanguageSpec:
    """One [[language]] table as a spec, checked: unknown keys, bad ids, limits beyond
    the ceilings and defaults beyond the language's own maxima are refused."""
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise LanguageDataError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("id", "name", "file_name", "executables", "run"):
        if key not in data:
            raise LanguageDataError(f"{where}: {key!r} is required")
    ident = data["id"]
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        raise LanguageDataError(f"{where}: id {ident!r} must be lower case, like 'python'")
    where = f"{where} {ident!r}"
    aliases = _strings(data.get("aliases", []), f"{where}.aliases")
    for alias in aliases:
        if not _ID.fullmatch(alias):
            raise LanguageDataError(f"{where}: alias {alias!r} must be lower case")
    version = data.get("version", {})
    compile_steps = data.get("compile")
    install = data.get("install", {})
    maxima = _bounded(MAXIMA, data.get("maxima"), CEILING, f"{where}.maxima")
    compile_maxima = _bounded(
        COMPILE_MAXIMA, data.get("compile_maxima"), COMPILE_CEILING, f"{where}.compile_maxima"
    )
    try:
        spec = LanguageSpec(
            id=ident,
            name=str(data["name"]),
            file_name=str(data["file_name"]),
            executables=_strings(data["executables"], f"{where}.executables"),
            run=_strings(data["run"], f"{where}.run"),
            version=VersionProbe(
                command=_strings(version.get("command", []), f"{where}.version.command"),
                path=version.get("path"),
                file=version.get("file"),
                pattern=version.get("pattern", r"(\S+)"),
            ),
            compile=(
                tuple(_strings(step, f"{where}.compile") for step in compile_steps)
                if compile_steps is not None
                else None
            ),
            extensions=_strings(data.get("extensions", []), f"{where}.extensions"),
            aliases=aliases,
            env={str(k): str(v) for k, v in data.get("env", {}).items()},
            binds=_strings(data.get("binds", []), f"{where}.binds"),
            tools={
                str(k): _strings(v, f"{where}.tools.{k}") for k, v in data.get("tools", {}).items()
            },
            sysroot_args=(
                _strings(data["sysroot_args"], f"{where}.sysroot_args")
                if "sysroot_args" in data
                else None
            ),
            processes_floor=int(data.get("processes_floor", 0)),
            main_pattern=data.get("main_pattern"),
            entry_last=bool(data.get("entry_last", False)),
            arguments=bool(data.get("arguments", True)),
            limits=_bounded(Limits(), data.get("limits"), maxima, f"{where}.limits"),
            maxima=maxima,
            compile_limits=_bounded(
                CompileLimits(),
                data.get("compile_limits"),
                compile_maxima,
                f"{where}.compile_limits",
            ),
            compile_maxima=compile_maxima,
            install=Install(
                apt=_strings(install.get("apt", []), f"{where}.install.apt"),
                npm=install.get("npm"),
                pip=install.get("pip"),
            ),
            default=bool(data.get("default", False)),
            notes=str(data.get("notes", "")).strip(),
        )
    except (AttributeError, TypeError, ValueError) as exc:
        if isinstance(exc, LanguageDataError):
            raise
        raise LanguageDataError(f"{where}: {exc}") from None
    if spec.main_pattern is not None:
        try:
            re.compile(spec.main_pattern)
        except re.error as exc:
            raise LanguageDataError(f"{where}.main_pattern: {exc}") from None
    return spec


def load_specs(*paths: Path | str) -> tuple[LanguageSpec, ...]:
    """The shipped languages, then each file's: an entry whose id is already known
    replaces it (so an operator can change a shipped language), a new id is added.
    Aliases must name one language only."""
    specs: dict[str, LanguageSpec] = {}
    for path in (DATA_FILE, *paths):
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise LanguageDataError(f"{path}: {exc}") from None
        entries = document.get("language", [])
        if set(document) - {"language"} or not isinstance(entries, list):
            raise LanguageDataError(f"{path}: expected only [[language]] tables")
        for index, entry in enumerate(entries):
            spec = spec_from_data(entry, f"{Path(path).name} language #{index + 1}")
            specs[spec.id] = spec
    owners: dict[str, str] = {}
    for spec in specs.values():
        for name in (spec.id, *spec.aliases):
            if owners.setdefault(name, spec.id) != spec.id:
                raise LanguageDataError(f"{name!r} names both {owners[name]!r} and {spec.id!r}")
    return tuple(specs.values())


@cache
def shipped_specs() -> tuple[LanguageSpec, ...]:
    return load_specs()


# -- finding runtimes -----------------------------------------------------------------


def _which(candidate: str, extra_path: str = "") -> str | None:
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
            env={"PATH": SYSTEM_PATH, "HOME": os.environ.get("HOME", "/"), "LANG": "C.UTF-8"},
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


def find_executable(spec: LanguageSpec) -> str | None:
    """The first of the spec's candidates installed here (None: not installed)."""
    return next((p for c in spec.executables if (p := _which(c))), None)


def _probe_version(spec: LanguageSpec, values: Mapping[str, str]) -> str | None:
    probe = spec.version
    if probe.path is not None or probe.file is not None:
        pattern = (probe.path or probe.file or "").format(**values)
        matches = sorted(Path("/").glob(pattern.lstrip("/")))
        if not matches:
            return None
        text: str | None
        try:
            text = os.path.realpath(matches[0]) if probe.path else matches[0].read_text()
        except OSError:
            return None
    else:
        argv = [part.format(**values) for part in probe.command]
        text = _run(argv) if argv else None
    match = re.search(probe.pattern, text or "")
    if match is None:
        log.warning("sandbox.language_unusable", language=spec.id, output=(text or "")[:200])
        return None
    return match.group(1)


def _resolve(spec: LanguageSpec) -> Language | None:
    found = find_executable(spec)
    if found is None:
        return None
    binds: list[str] = []
    executable = os.path.realpath(found)
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
    extra: dict[str, str] = {}
    values = {"exe": executable, "exe_dir": os.path.dirname(executable)}
    for name, candidates in spec.tools.items():
        tool = next((p for c in candidates if (p := _which(c.format(**values)))), None)
        if tool is None:
            log.warning("sandbox.language_tool_missing", language=spec.id, tool=name)
            return None
        extra[name] = os.path.realpath(tool)
    for pattern in spec.binds:
        binds.extend(str(p) for p in sorted(Path("/").glob(pattern.lstrip("/"))))
    version = _probe_version(spec, {**values, **extra})
    if version is None:
        return None
    for program in (executable, *extra.values()):
        if not _under_usr(program) and not any(program.startswith(b + "/") for b in binds):
            binds.append(os.path.dirname(program))
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
        version=version,
        executable=executable,
        binds=tuple(dict.fromkeys(binds)),
        path=path,
        extra=extra,
    )


def _version_matches(installed: str, requested: str) -> bool:
    """ "3", "3.11" and "3.11.2" all match 3.11.2; "3.1" does not."""
    return installed == requested or installed.startswith(requested.rstrip(".") + ".")


class LanguageRegistry:
    """The languages available on this machine, detected once."""

    def __init__(self, languages: Iterable[Language]) -> None:
        self._languages = {language.id: language for language in languages}
        self._names = {
            name: language.id
            for language in self._languages.values()
            for name in (*language.aliases, language.id)
        }

    @classmethod
    def detect(
        cls,
        specs: Iterable[LanguageSpec] | None = None,
        *,
        allow: Collection[str] | None = None,
    ) -> LanguageRegistry:
        """Resolve each spec against this machine (version probes run in parallel).
        `allow`: only these ids (the LANGUAGES setting); an id no spec has is an error,
        so a typo does not silently disable a language."""
        candidates = list(specs if specs is not None else shipped_specs())
        if allow is not None:
            unknown = sorted(set(allow) - {spec.id for spec in candidates})
            if unknown:
                raise LanguageDataError(
                    f"LANGUAGES names unknown language ids {unknown}; known: "
                    + ", ".join(sorted(spec.id for spec in candidates))
                )
            candidates = [spec for spec in candidates if spec.id in allow]
        with ThreadPoolExecutor(max_workers=_DETECT_THREADS) as pool:
            resolved = list(pool.map(_resolve, candidates))
        found = [language for language in resolved if language is not None]
        log.info("sandbox.languages", languages={lang.id: lang.version for lang in found})
        return cls(found)

    @staticmethod
    def default(
        allow: Collection[str] | None = None, files: Sequence[str | Path] = ()
    ) -> LanguageRegistry:
        """This machine's registry, detected once per process and configuration
        (detection runs every runtime's version probe)."""
        return _default_registry(
            tuple(sorted(allow)) if allow is not None else None, tuple(str(f) for f in files)
        )

    def get(self, name: str) -> Language | None:
        """A language by id or alias."""
        language_id = self._names.get(name)
        return self._languages[language_id] if language_id is not None else None

    def resolve(self, name: str, version: str | None = None) -> Language:
        """The language `name` (id or alias) names, in `version` when one is asked for.
        Raises LanguageNotFound or VersionNotAvailable, which say what is available."""
        language = self.get(name)
        if language is None:
            raise LanguageNotFound(name, self.ids())
        if version is not None and not _version_matches(language.version, version):
            raise VersionNotAvailable(language.id, version, [language.version])
        return language

    def ids(self) -> list[str]:
        return sorted(self._languages)

    def __iter__(self) -> Iterator[Language]:
        return iter(sorted(self._languages.values(), key=lambda language: language.id))

    def __len__(self) -> int:
        return len(self._languages)


@cache
def _default_registry(allow: tuple[str, ...] | None, files: tuple[str, ...]) -> LanguageRegistry:
    specs = load_specs(*files) if files else shipped_specs()
    return LanguageRegistry.detect(specs, allow=allow)
