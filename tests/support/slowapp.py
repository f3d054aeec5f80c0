"""An app factory for the real-server tests: the real app plus one slow route.

The slow route signals that it has started (a marker file) and finishes when the test
releases it (another file), so the test can send SIGTERM while the request is in flight
without guessing at timings.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from fastapi import FastAPI

from coderoom.api.main import create_app_from_env
from coderoom.auth.deps import CurrentUser


def create() -> FastAPI:
    app = create_app_from_env()
    control = Path(os.environ["CODEROOM_TEST_CONTROL_DIR"])

    @app.get("/api/v1/_test/slow")
    async def slow() -> dict[str, str]:
        (control / "entered").touch()
        async with asyncio.timeout(30):
            while not (control / "release").exists():
                await asyncio.sleep(0.01)
        return {"status": "finished"}

    @app.post("/api/v1/_test/boom")
    async def boom(user: CurrentUser, body: dict[str, object]) -> None:
        del body
        raise RuntimeError(f"boom for {user.id}")

    return app
