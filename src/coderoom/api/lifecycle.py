"""Learning of SIGTERM when the server does, not after it has drained.

uvicorn installs its own SIGTERM/SIGINT handlers (`Server.handle_exit`) before it starts the
lifespan, and tells the application nothing until every in-flight request has finished or
the grace period is over. Requests that wait on a run must answer before that (see
`infra.lifecycle.Shutdown`), so the lifespan chains a handler in front of uvicorn's: it
marks the shutdown, then hands the signal on unchanged. Under anything else (the test
client, another server) the handlers are left alone and the shutdown is marked when the
lifespan ends.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from uvicorn.server import Server

from coderoom.infra.lifecycle import Shutdown

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _served_by_uvicorn() -> bool:
    handler = signal.getsignal(signal.SIGTERM)
    return isinstance(getattr(handler, "__self__", None), Server)


@contextmanager
def shutdown_on_signals(shutdown: Shutdown) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or not _served_by_uvicorn():
        yield
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, _Handler] = {signum: signal.getsignal(signum) for signum in _SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(shutdown.begin)
        server_handler = previous[signum]
        if callable(server_handler):
            server_handler(signum, frame)

    for signum in _SIGNALS:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            if signal.getsignal(number) is handler:
                signal.signal(number, old)
