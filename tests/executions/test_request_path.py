"""What one run request costs the database, and what it answers without `wait`."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from tests.support.factories import user

_WRITE = re.compile(r"^\s*(INSERT INTO|UPDATE)\s+executions\b", re.IGNORECASE)


async def test_embedded_run_writes_the_row_once_before_and_once_after(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ada = await user(client, "ada")
    writes: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _WRITE.match(statement):
            writes.append(statement.split()[0].upper())

    engine = app.state.coderoom.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = await client.post(
            "/api/v1/sandbox/executions?wait=true",
            json={"language": "python", "source": "print('once')"},
            headers=ada,
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200
    assert response.json()["stdout"] == "once\n"
    assert writes == ["INSERT", "UPDATE"]  # accepted already running; the verdict


async def test_without_wait_the_answer_is_always_202(client: httpx.AsyncClient) -> None:
    """Even when the run is over before the response is written (it used to be a 200)."""
    ada = await user(client, "ada")

    async def submit() -> httpx.Response:
        return await client.post(
            "/api/v1/sandbox/executions",
            json={"language": "python", "source": "pass"},
            headers=ada,
        )

    responses = []
    for _ in range(3):  # bursts of 4 (the per-user cap), each run finishing at once
        burst = await asyncio.gather(*(submit() for _ in range(4)))
        responses.extend(burst)
        for response in burst:
            await _until_over(client, ada, response.json()["id"])
    assert {r.status_code for r in responses} == {202}
    assert {r.json()["status"] for r in responses} <= {"queued", "running"}
    assert all(r.headers["location"].endswith(r.json()["id"]) for r in responses)


async def _until_over(client: httpx.AsyncClient, headers: dict[str, str], eid: str) -> None:
    async with asyncio.timeout(30):
        while (await client.get(f"/api/v1/sandbox/executions/{eid}", headers=headers)).json()[
            "status"
        ] in ("queued", "running"):
            await asyncio.sleep(0.02)
