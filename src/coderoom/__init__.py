"""coderoom: live coding sessions with sandboxed code execution."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coderoom")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
