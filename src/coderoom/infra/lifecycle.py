"""The process's shutdown, as something code can wait on.

A server (uvicorn) learns of SIGTERM long before the application does: it first stops
accepting, then waits up to its grace period for in-flight requests, and only then runs the
lifespan shutdown. Requests that are waiting for something slow (a `?wait=true` execution)
must answer before the grace runs out, or they are cancelled and the client sees an error.
`Shutdown.begin()` is called from the server's signal handler; waiters race
`Shutdown.answer_time()` to answer in time.
"""

from __future__ import annotations

import asyncio

#: Answer this long before the grace runs out: time to write the response and for the
#: server to notice the request is done.
ANSWER_MARGIN_SECONDS = 1.0


class Shutdown:
    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self._begun = asyncio.Event()
        self._at: float | None = None

    @property
    def begun(self) -> bool:
        return self._at is not None

    def begin(self) -> None:
        """Mark the start of the shutdown (idempotent). Call on the event loop's thread."""
        if self._at is None:
            self._at = asyncio.get_running_loop().time()
            self._begun.set()

    async def wait_begun(self) -> None:
        """Return once the shutdown has begun."""
        await self._begun.wait()

    @property
    def deadline(self) -> float | None:
        """Event-loop time by which the process must be gone, once shutting down."""
        return None if self._at is None else self._at + self.grace_seconds

    async def answer_time(self) -> None:
        """Return when a waiting request must stop waiting and answer (never, if the
        process is not shutting down)."""
        await self._begun.wait()
        assert self._at is not None
        margin = min(ANSWER_MARGIN_SECONDS, self.grace_seconds / 4)
        delay = self._at + self.grace_seconds - margin - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
