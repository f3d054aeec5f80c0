"""Clients of the live routes for tests and benchmarks: an SSE reader and a WebSocket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Sse:
    id: str | None
    event: str
    data: dict[str, Any]


async def sse_events(response: httpx.Response) -> AsyncIterator[Sse]:
    """The events of a `text/event-stream` response, as a browser's EventSource parses them
    (comments skipped)."""
    event_id: str | None = None
    name = "message"
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Sse(event_id, name, json.loads("\n".join(data)))
            event_id, name, data = None, "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                event_id = value
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)


async def collect(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    last_event_id: str | None = None,
    stop_after: int | None = None,
) -> list[Sse]:
    """Every event until the stream ends (or `stop_after` events were read)."""
    if last_event_id is not None:
        headers = {**headers, "Last-Event-ID": last_event_id}
    found: list[Sse] = []
    async with http.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event in sse_events(response):
            found.append(event)
            if stop_after is not None and len(found) >= stop_after:
                break
    return found


def text_of(events: list[Sse], kind: str = "stdout") -> str:
    return "".join(e.data["data"] for e in events if e.event == kind)
