"""A small y-protocols client (what y-websocket does), on `websockets` and pycrdt, for tests
and the benchmark: it syncs a local Doc with the server, sends local edits as updates,
applies the server's, and keeps the awareness states it hears.

`edit` sends exactly the update its change produced, as y-websocket does from `doc.on
('update')`. `wait_for` waits for a condition on what arrived, never for a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import websockets
from pycrdt import Doc, Map, Text, create_sync_message, create_update_message
from websockets.asyncio.client import ClientConnection

from coderoom.live import protocol

WAIT_SECONDS = 20.0
_changes: dict[asyncio.AbstractEventLoop, asyncio.Condition] = {}


def changes() -> asyncio.Condition:
    """One condition for every client on this loop, notified whenever any of them receives
    something: a wait may depend on several clients at once."""
    loop = asyncio.get_running_loop()
    if loop not in _changes:
        _changes.clear()  # conditions of finished loops
        _changes[loop] = asyncio.Condition()
    return _changes[loop]


class YClient:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = {k: v for k, v in headers.items() if k.lower() == "authorization"}
        self.doc: Doc[Any] = Doc()
        self.doc.get("files", type=Map)
        self.doc.get("meta", type=Map)
        self.ws: ClientConnection | None = None
        self.synced = asyncio.Event()
        self.awareness: dict[int, dict[str, Any] | None] = {}
        self.reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.closed = asyncio.Event()
        self.received_updates = 0
        self.denials: list[str] = []

    async def connect(self, *, wait_synced: bool = True) -> YClient:
        self.ws = await websockets.connect(
            self.url, additional_headers=self.headers, max_size=16 * 1024 * 1024
        )
        self.reader = asyncio.create_task(self._read())
        with contextlib.suppress(websockets.ConnectionClosed):  # refused at once (a cap)
            await self.ws.send(create_sync_message(self.doc))
        if wait_synced:
            await asyncio.wait_for(self.synced.wait(), WAIT_SECONDS)
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes)
                await self._handle(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.ws.close_code is not None:
                self.close_code = self.ws.close_code
                self.close_reason = self.ws.close_reason or ""
            self.closed.set()
            async with changes():
                changes().notify_all()

    async def _handle(self, frame: bytes) -> None:
        assert self.ws is not None
        message = protocol.parse(frame, from_client=False)
        if isinstance(message, protocol.SyncStep1):
            update = self.doc.get_update(message.state_vector)
            await self.ws.send(
                bytes([protocol.SYNC, protocol.STEP2])
                + protocol.write_varuint(len(update))
                + update
            )
        elif isinstance(message, protocol.SyncUpdate):
            self.doc.apply_update(message.update)
            self.received_updates += 1
            if message.step2:
                self.synced.set()
        elif isinstance(message, protocol.AwarenessUpdate):
            for entry in message.entries:
                self.awareness[entry.client_id] = entry.state
        elif isinstance(message, protocol.PermissionDenied):
            self.denials.append(message.reason)
        async with changes():
            changes().notify_all()

    # --- reading the document ----------------------------------------------------------

    def files(self) -> dict[str, str]:
        files = self.doc.get("files", type=Map)
        return {name: str(text) for name, text in files.items() if isinstance(text, Text)}

    def text(self, name: str) -> str:
        return self.files().get(name, "")

    def text_obj(self, name: str) -> Text:
        value = self.doc.get("files", type=Map)[name]
        assert isinstance(value, Text)
        return value

    async def wait_for(self, predicate: Callable[[], bool], within: float = WAIT_SECONDS) -> None:
        async def until() -> None:
            async with changes():
                await changes().wait_for(lambda: predicate() or self.closed.is_set())

        await asyncio.wait_for(until(), within)
        if not predicate():
            raise AssertionError(f"closed ({self.close_code} {self.close_reason}) before it held")

    async def wait_closed(self, within: float = WAIT_SECONDS) -> int | None:
        await asyncio.wait_for(self.closed.wait(), within)
        return self.close_code

    # --- sending -----------------------------------------------------------------------

    async def edit(self, change: Callable[[Doc[Any]], None]) -> bytes:
        """Make a local change and send its update; returns the update."""
        before = self.doc.get_state()
        with self.doc.transaction():
            change(self.doc)
        update = self.doc.get_update(before)
        await self.send(create_update_message(update))
        return update

    async def send_since(self, state: bytes) -> bytes:
        """Send what changed locally since `state` (edits made on `doc` directly)."""
        update = self.doc.get_update(state)
        await self.send(create_update_message(update))
        return update

    async def set_file(self, name: str, text: str) -> bytes:
        return await self.edit(lambda doc: doc.get("files", type=Map).__setitem__(name, Text(text)))

    async def insert(self, name: str, index: int, text: str) -> bytes:
        return await self.edit(lambda _: self.text_obj(name).insert(index, text))

    async def send(self, frame: bytes | str) -> None:
        assert self.ws is not None
        await self.ws.send(frame)

    async def set_awareness(self, client_id: int, clock: int, state: dict[str, Any] | None) -> None:
        payload = protocol.encode_awareness([(client_id, clock, state)])
        await self.send(protocol.awareness_message(payload))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader


def awareness_json(state: dict[str, Any]) -> str:
    return json.dumps(state)
