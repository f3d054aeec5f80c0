"""The y-protocols wire format (what y-websocket speaks), parsed defensively.

One WebSocket binary frame carries one message:

    sync:       varuint 0, varuint subtype (0 step 1, 1 step 2, 2 update), varbytes payload
    awareness:  varuint 1, varbytes (varuint n, then n times: varuint client, varuint clock,
                varstring json)
    query:      varuint 3 (ask for every awareness state)

pycrdt builds the outgoing messages (`create_sync_message`, `create_update_message`, ...);
its readers assume well-formed input (an IndexError or a bare assert on truncation), so
incoming frames go through `parse` here first: every length is checked against the frame,
trailing bytes are refused, and awareness states must be JSON objects or null. Anything
else raises `MalformedMessage`, which closes that one connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

SYNC = 0
AWARENESS = 1
AUTH = 2  # server to client only: "permission denied" and its reason
QUERY_AWARENESS = 3
PERMISSION_DENIED = 0
STEP1 = 0
STEP2 = 1
UPDATE = 2
MAX_AWARENESS_ENTRIES = 16
_MAX_VARUINT_BYTES = 8


class MalformedMessage(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varuint(self) -> int:
        value = 0
        for shift in range(0, 7 * _MAX_VARUINT_BYTES, 7):
            if self.pos >= len(self.data):
                raise MalformedMessage("truncated number")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
        raise MalformedMessage("number too long")

    def varbytes(self) -> bytes:
        length = self.varuint()
        end = self.pos + length
        if end > len(self.data):
            raise MalformedMessage("length beyond the message")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def done(self) -> None:
        if self.pos != len(self.data):
            raise MalformedMessage("trailing bytes")


@dataclass(frozen=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True)
class SyncUpdate:
    update: bytes
    step2: bool


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: dict[str, object] | None


@dataclass(frozen=True)
class AwarenessUpdate:
    payload: bytes  # the awareness update as received, relayed unchanged
    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True)
class QueryAwareness:
    pass


@dataclass(frozen=True)
class PermissionDenied:
    reason: str


Message = SyncStep1 | SyncUpdate | AwarenessUpdate | QueryAwareness | PermissionDenied


def parse_awareness(payload: bytes) -> tuple[AwarenessEntry, ...]:
    reader = _Reader(payload)
    count = reader.varuint()
    if count > MAX_AWARENESS_ENTRIES:
        raise MalformedMessage("too many awareness states in one message")
    entries = []
    for _ in range(count):
        client_id = reader.varuint()
        clock = reader.varuint()
        raw = reader.varbytes()
        try:
            state = json.loads(raw.decode()) if raw else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedMessage("awareness state is not JSON") from exc
        if state is not None and not isinstance(state, dict):
            raise MalformedMessage("awareness state must be an object or null")
        entries.append(AwarenessEntry(client_id, clock, state))
    reader.done()
    return tuple(entries)


def parse(frame: bytes, *, from_client: bool = True) -> Message:
    """One message. Servers parse what clients send (`from_client`): an auth message from
    a client is malformed; clients (tests, bench) pass False."""
    reader = _Reader(frame)
    kind = reader.varuint()
    message: Message
    if kind == SYNC:
        subtype = reader.varuint()
        payload = reader.varbytes()
        if subtype == STEP1:
            message = SyncStep1(payload)
        elif subtype in (STEP2, UPDATE):
            message = SyncUpdate(payload, step2=subtype == STEP2)
        else:
            raise MalformedMessage(f"unknown sync message type {subtype}")
    elif kind == AWARENESS:
        payload = reader.varbytes()
        message = AwarenessUpdate(payload, parse_awareness(payload))
    elif kind == QUERY_AWARENESS:
        message = QueryAwareness()
    elif kind == AUTH and not from_client:
        if reader.varuint() != PERMISSION_DENIED:
            raise MalformedMessage("unknown auth message")
        message = PermissionDenied(reader.varbytes().decode(errors="replace"))
    else:
        raise MalformedMessage(f"unknown message type {kind}")
    reader.done()
    return message


def write_varuint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def awareness_message(payload: bytes) -> bytes:
    return bytes([AWARENESS]) + write_varuint(len(payload)) + payload


def encode_awareness(entries: Sequence[tuple[int, int, dict[str, object] | None]]) -> bytes:
    """An awareness update (the payload of an awareness message)."""
    out = bytearray(write_varuint(len(entries)))
    for client_id, clock, state in entries:
        text = b"null" if state is None else json.dumps(state, separators=(",", ":")).encode()
        out += write_varuint(client_id) + write_varuint(clock) + write_varuint(len(text)) + text
    return bytes(out)


def permission_denied(reason: str) -> bytes:
    text = reason.encode()
    return bytes([AUTH, PERMISSION_DENIED]) + write_varuint(len(text)) + text
