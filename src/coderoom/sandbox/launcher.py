"""Find, or build, the `coderoom-launch` binary from `launcher.c` (see that file for why).

The binary lives next to this module under `_bin/`, named after a hash of its source, so a
changed source is never run stale. `make install` builds it (`BUILD_COMMAND`); the engine
builds it on first use when a C compiler is at hand and the package directory is writable,
and otherwise refuses to run with the command that fixes it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

SOURCE = Path(__file__).with_name("launcher.c")
BIN_DIR = Path(__file__).with_name("_bin")
BUILD_COMMAND = (
    f'{Path(sys.executable).name} -c "from coderoom.sandbox.launcher import ensure_built; '
    'print(ensure_built())"'
)


class LauncherUnavailable(RuntimeError):
    """The launcher binary is missing and cannot be built here; the message says why."""


def binary_path() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    return BIN_DIR / f"coderoom-launch-{digest}"


def _compile(target: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise LauncherUnavailable(
            f"the sandbox launcher is not built and no C compiler is installed: install gcc "
            f"and run `{BUILD_COMMAND}`"
        )
    try:
        BIN_DIR.mkdir(mode=0o755, exist_ok=True)
    except OSError as exc:
        raise LauncherUnavailable(
            f"the sandbox launcher is not built and {BIN_DIR} is not writable ({exc.strerror}): "
            f"run `{BUILD_COMMAND}` as the user that installed coderoom"
        ) from exc
    flags = ["-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2"]
    with tempfile.TemporaryDirectory(dir=BIN_DIR) as scratch:
        output = Path(scratch) / "launch"
        # Static when the C library allows it: no dynamic loader on the hot path.
        for extra in (["-static"], []):
            done = subprocess.run(  # noqa: S603 - fixed argv, our own source
                [compiler, *flags, *extra, "-o", str(output), str(SOURCE)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                break
        else:
            raise LauncherUnavailable(f"the sandbox launcher does not compile: {done.stderr}")
        output.chmod(0o755)
        os.replace(output, target)  # atomic: a concurrent builder never sees half a file


@cache
def ensure_built() -> str:
    """The launcher's path, building it first if needed."""
    target = binary_path()
    if not os.access(target, os.X_OK):
        _compile(target)
    return str(target)
