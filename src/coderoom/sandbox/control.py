"""Talking to a run while it goes: watching it (`RunObserver`) and steering it (`RunControl`).

Both are optional; a plain `Engine.run` call needs neither. Streaming output, interactive
stdin, signals and cancellation are built on these and nothing else.
"""

from __future__ import annotations

import signal
from enum import StrEnum
from typing import Protocol


class Phase(StrEnum):
    COMPILING = "compiling"
    RUNNING = "running"


class OutputStream(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    COMPILE = "compile"


class RunObserver(Protocol):
    """Called on the event loop, in order, as the run progresses. Must not block: hand the
    data on (a bounded queue, a Redis stream) and return."""

    def phase(self, phase: Phase) -> None: ...

    def output(self, stream: OutputStream, data: bytes) -> None:
        """A chunk as the program wrote it, within the stream's cap."""


#: What may be sent to a running program (the rest stay the engine's own business).
ALLOWED_SIGNALS = frozenset(
    {
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGKILL,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    }
)


#: The most interactive input a run holds that its program has not read yet; past it,
#: `write_stdin` refuses (the program has to read some first).
STDIN_BUFFER_BYTES = 1024 * 1024


class _Steerable(Protocol):
    def write_stdin(self, data: bytes) -> bool: ...

    def stdin_buffered(self) -> int: ...

    def close_stdin(self) -> None: ...

    def send_signal(self, signum: int) -> bool: ...

    def cancel(self, message: str) -> None: ...


class RunControl:
    """A handle on one run, usable before it starts and after it ends.

    `interactive`: keep the program's stdin open after the request's own stdin, for
    `write_stdin` until `close_stdin`. Input written before the program starts is queued;
    a cancel before the start makes the run end at once as cancelled. At most
    STDIN_BUFFER_BYTES of input are held unread (queued, or buffered for the pipe).
    """

    def __init__(self, *, interactive: bool = False) -> None:
        self.interactive = interactive
        self._run: _Steerable | None = None
        self._pending: list[bytes] = []
        self._stdin_closed = False
        self._cancelled: str | None = None

    # -- used by the engine -----------------------------------------------------------

    def attach(self, run: _Steerable) -> None:
        self._run = run
        if self._cancelled is not None:
            run.cancel(self._cancelled)
            return
        for chunk in self._pending:
            run.write_stdin(chunk)
        self._pending.clear()
        if self._stdin_closed:
            run.close_stdin()

    def detach(self) -> None:
        self._run = None
        self._stdin_closed = True

    # -- used by whoever steers the run ---------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancelled is not None

    def stdin_buffered(self) -> int:
        """Input written that the program has not read yet (0 once it is over)."""
        if self._run is None:
            return 0 if self._stdin_closed else sum(map(len, self._pending))
        return self._run.stdin_buffered()

    def write_stdin(self, data: bytes) -> bool:
        """Send input; False once stdin is closed (or the run is over), or when it would
        leave more than STDIN_BUFFER_BYTES unread."""
        if self._stdin_closed or not self.interactive:
            return False
        if self.stdin_buffered() + len(data) > STDIN_BUFFER_BYTES:
            return False
        if self._run is None:
            self._pending.append(data)
            return True
        return self._run.write_stdin(data)

    def close_stdin(self) -> None:
        if self._stdin_closed:
            return
        self._stdin_closed = True
        if self._run is not None:
            self._run.close_stdin()

    def send_signal(self, signum: int) -> bool:
        """Signal the program's own processes; False if it is not running or the signal is
        not one a program may be sent."""
        if signum not in ALLOWED_SIGNALS or self._run is None:
            return False
        return self._run.send_signal(signum)

    def cancel(self, message: str = "cancelled by request") -> None:
        """Stop the run; its result says `cancelled` and keeps the output so far."""
        if self._cancelled is None:
            self._cancelled = message
            if self._run is not None:
                self._run.cancel(message)
