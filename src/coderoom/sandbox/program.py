"""A program to run: one or more files, validated before anything touches the disk."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

MAX_FILES = 64
MAX_STDIN_BYTES = 1024 * 1024
MAX_ARGS = 64
MAX_ARG_BYTES = 4096
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")


class ProgramError(ValueError):
    """The program cannot be run as given (bad file name, too much input…)."""


@dataclass(frozen=True)
class ProgramFile:
    """A file of the program: text (written as UTF-8) or bytes (written as they are,
    e.g. a data file sent base64-encoded)."""

    name: str
    content: str | bytes

    @property
    def data(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content


@dataclass(frozen=True)
class Program:
    """Files (the first is the entry point), stdin and arguments, all exactly as sent."""

    files: tuple[ProgramFile, ...]
    stdin: str = ""
    args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.files:
            raise ProgramError("a program needs at least one file")
        if len(self.files) > MAX_FILES:
            raise ProgramError(f"at most {MAX_FILES} files")
        seen = set()
        for item in self.files:
            check_file_name(item.name)
            if item.name in seen:
                raise ProgramError(f"duplicate file name {item.name!r}")
            seen.add(item.name)
        directories = {str(parent) for name in seen for parent in PurePosixPath(name).parents}
        for clash in sorted(seen & directories):
            raise ProgramError(f"{clash!r} is both a file and a directory of the program")
        if len(self.stdin.encode()) > MAX_STDIN_BYTES:
            raise ProgramError(f"stdin is larger than {MAX_STDIN_BYTES} bytes")
        if len(self.args) > MAX_ARGS:
            raise ProgramError(f"at most {MAX_ARGS} arguments")
        for arg in self.args:
            if "\0" in arg or len(arg.encode()) > MAX_ARG_BYTES:
                raise ProgramError("arguments may not contain NUL or exceed 4096 bytes")

    @property
    def entry(self) -> ProgramFile:
        return self.files[0]

    @classmethod
    def single(
        cls, name: str, source: str, *, stdin: str = "", args: tuple[str, ...] = ()
    ) -> Program:
        return cls(files=(ProgramFile(name, source),), stdin=stdin, args=args)


def check_file_name(name: str) -> None:
    """Relative, no `..`, no hidden tricks: each part a plain name of safe characters."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or "\\" in name or "\0" in name:
        raise ProgramError(f"invalid file name {name!r}: must be a relative path")
    parts = name.split("/")  # not path.parts: it drops "." and empty parts silently
    if len(parts) > 4:
        raise ProgramError(f"invalid file name {name!r}: nested too deep")
    for part in parts:
        if part in (".", "..") or not _NAME.fullmatch(part):
            raise ProgramError(
                f"invalid file name {name!r}: use letters, digits, '_', '-', '.' and '+'"
            )
