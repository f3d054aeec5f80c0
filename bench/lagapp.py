"""The real app plus an event-loop lag probe, for bench/e2e.py (never used in production).

A task sleeps 1 ms in a loop and records how late it wakes up: any time the loop spends
blocked (a fork/exec, a synchronous database call, heavy CPU on the loop) shows as lag.
`GET /_bench/lag` returns the percentiles of the samples since the previous call.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from coderoom.api.main import create_app_from_env

TICK = 0.001


def create() -> FastAPI:
    app = create_app_from_env()
    samples: list[float] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(TICK)
            samples.append((loop.time() - start - TICK) * 1000)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with inner(application):
            task = asyncio.create_task(probe())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan

    @app.get("/_bench/lag")
    async def lag() -> dict[str, float]:
        taken = sorted(samples)
        samples.clear()
        if not taken:
            return {"samples": 0}
        return {
            "samples": len(taken),
            "p50_ms": statistics.median(taken),
            "p99_ms": taken[int(0.99 * (len(taken) - 1))],
            "max_ms": taken[-1],
        }

    # Ahead of the web app's catch-all page route, which would otherwise answer first.
    app.router.routes.insert(0, app.router.routes.pop())
    return app
