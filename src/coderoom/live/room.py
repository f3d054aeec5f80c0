"""A room: one session's document loaded in this process, and its connections here.

The room applies the protocol's rules; it knows no web framework (a `Connection` is given a
`send` and a `close`) and no database (the hub persists through `UpdateWriter`).

An update from a connection goes: role check → rate check → applied to the room's *trial*
doc (a shadow copy, so its effect can be inspected) → schema check (roots, file names,
text values, meta) and integration check (nothing left pending) → size check on the whole
encoded state → persisted (awaited) → applied to the room's doc → sent to the room's other
connections and published to the other instances. A refused update leaves the trial doc
dirty, so it is re-copied from the real one. Nothing is applied or broadcast before
it is durable, and a message that fails a check closes only its own connection.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import structlog
from pycrdt import create_sync_message, create_update_message

from coderoom.core import closecodes
from coderoom.core.closecodes import CloseCode
from coderoom.core.tokenbucket import TokenBucket
from coderoom.live import document, protocol
from coderoom.live.document import Doc
from coderoom.live.limits import LiveLimits

log = structlog.get_logger(__name__)

EDIT_ROLES = frozenset({"owner", "editor"})


class CloseConnection(Exception):
    """Close the connection that sent the message with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class Connection:
    """One client. Frames to it go through an outbox that a pump task drains, so a slow
    client never holds up the room; `close` lets the outbox drain, then closes."""

    user_id: uuid.UUID
    role: str
    send_frame: Callable[[bytes], Awaitable[None]]
    close_transport: Callable[[int, str], Awaitable[None]]
    limits: LiveLimits
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    outbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str = ""
    refused_updates: int = 0
    #: True while a message from the client is being handled (an update being persisted).
    handling: bool = False
    #: Awareness client ids this connection owns (at most `limits.max_awareness_clients`).
    client_ids: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.updates = TokenBucket(self.limits.updates_per_second, self.limits.update_burst)
        self.awareness = TokenBucket(self.limits.awareness_per_second, self.limits.awareness_burst)

    @property
    def may_edit(self) -> bool:
        return self.role in EDIT_ROLES

    def send(self, frame: bytes) -> None:
        """Queue a frame; never waits on the client. One that stops reading is dropped."""
        if self.closed.is_set():
            return
        if self.outbox.qsize() >= self.limits.max_send_queue:
            self.close(CloseCode.TOO_MANY, "too far behind: not reading fast enough")
            return
        self.outbox.put_nowait(frame)

    def close(self, code: int, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_code = code
        self.close_reason = closecodes.close_reason(reason)
        self.closed.set()
        self.outbox.put_nowait(None)

    def gone(self) -> None:
        """The client went away: nothing more to send."""
        self.closed.set()
        self.outbox.put_nowait(None)

    async def pump(self) -> None:
        """Send queued frames in order; at the end, the close frame if we are closing."""
        while (frame := await self.outbox.get()) is not None:
            await self.send_frame(frame)
        if self.close_code is not None:
            await self.close_transport(self.close_code, self.close_reason)


Persist = Callable[[uuid.UUID, bytes], Awaitable[None]]
Publish = Callable[[uuid.UUID, bytes, bytes], Awaitable[None]]
AwarenessState = tuple[int, dict[str, object] | None, uuid.UUID]


def owned_awareness(owner: uuid.UUID, payload: bytes) -> bytes:
    """A bus awareness message: the owning connection's id, then the awareness update."""
    return owner.bytes + payload


class Room:
    def __init__(
        self,
        session_id: uuid.UUID,
        doc: Doc,
        *,
        limits: LiveLimits,
        persist: Persist,
        publish: Publish,
        on_accepted: Callable[[Room], None],
        languages: Collection[str],
    ) -> None:
        self.session_id = session_id
        self.doc = doc
        self.limits = limits
        self.persist = persist
        self.publish = publish
        self.on_accepted = on_accepted
        self.languages = languages
        self.connections: dict[uuid.UUID, Connection] = {}
        # client id → (clock, state, id of the connection that owns it, here or elsewhere)
        self.awareness: dict[int, AwarenessState] = {}
        self.trial = document.fork(doc)
        self.size_bound = document.encoded_size(doc)
        self.appended = 0
        self.idle_since = time.monotonic()
        self.last_edit_at: float | None = None

    # --- connections -------------------------------------------------------------------

    def join(self, connection: Connection) -> None:
        self.connections[connection.id] = connection
        connection.send(create_sync_message(self.doc))
        states = [(cid, clock, state) for cid, (clock, state, _) in self.awareness.items()]
        if states:
            connection.send(protocol.awareness_message(protocol.encode_awareness(states)))

    async def leave(self, connection: Connection) -> None:
        self.connections.pop(connection.id, None)
        if not self.connections:
            self.idle_since = time.monotonic()
        gone = [
            (cid, clock + 1, None)
            for cid, (clock, state, owner) in self.awareness.items()
            if owner == connection.id and state is not None
        ]
        for cid, _, _ in gone:
            self.awareness.pop(cid, None)
        if gone:
            payload = protocol.encode_awareness(gone)
            self._broadcast(protocol.awareness_message(payload), exclude=None)
            await self.publish(self.session_id, b"a", owned_awareness(connection.id, payload))

    def _broadcast(self, frame: bytes, exclude: Connection | None) -> None:
        for connection in list(self.connections.values()):
            if connection is not exclude:
                connection.send(frame)

    # --- messages from a local connection ----------------------------------------------

    async def receive(self, connection: Connection, frame: bytes) -> None:
        if len(frame) > self.limits.max_message_bytes:
            raise CloseConnection(CloseCode.TOO_LARGE, "message too large")
        try:
            message = protocol.parse(frame)
        except protocol.MalformedMessage as exc:
            raise CloseConnection(CloseCode.POLICY_VIOLATION, f"malformed message: {exc}") from exc
        if isinstance(message, protocol.SyncStep1):
            self._answer_step1(connection, message.state_vector)
        elif isinstance(message, protocol.SyncUpdate):
            await self._update(connection, message.update)
        elif isinstance(message, protocol.AwarenessUpdate):
            await self._awareness(connection, message)
        elif isinstance(message, protocol.QueryAwareness):
            states = [(cid, clock, state) for cid, (clock, state, _) in self.awareness.items()]
            connection.send(protocol.awareness_message(protocol.encode_awareness(states)))
        else:
            raise CloseConnection(CloseCode.POLICY_VIOLATION, "unexpected message")

    def _answer_step1(self, connection: Connection, state_vector: bytes) -> None:
        try:
            update = self.doc.get_update(state_vector)
        except ValueError as exc:
            raise CloseConnection(CloseCode.POLICY_VIOLATION, "malformed state vector") from exc
        body = protocol.write_varuint(len(update)) + update
        connection.send(bytes([protocol.SYNC, protocol.STEP2]) + body)

    async def _update(self, connection: Connection, update: bytes) -> None:
        if update == document.EMPTY_UPDATE:
            return
        if not connection.updates.take():
            raise CloseConnection(CloseCode.TOO_MANY, "too many updates per second")
        if not connection.may_edit:
            # Refused: never applied, never broadcast. The connection stays (a viewer's
            # client may hold local edits its editor failed to block) and is told with the
            # y-protocols "permission denied" message, which y-websocket reports.
            connection.refused_updates += 1
            connection.send(protocol.permission_denied(f"a {connection.role} may not edit"))
            return
        try:
            self._try(update)
            await self.persist(self.session_id, update)
        except CloseConnection:
            self._reset_trial()
            raise
        except Exception as exc:
            self._reset_trial()
            # The type only: a database error's text carries the statement's parameters,
            # here the update's bytes, i.e. the source code.
            log.warning("live.update_not_persisted", error=type(exc).__name__)
            raise CloseConnection(
                CloseCode.TRY_AGAIN_LATER, "could not store the update; reconnect"
            ) from exc
        self.doc.apply_update(update)
        self._broadcast(create_update_message(update), exclude=connection)
        self.appended += 1
        self.last_edit_at = time.time()
        self.on_accepted(self)
        await self.publish(self.session_id, b"u", update)

    def _try(self, update: bytes) -> None:
        """Apply `update` to the trial doc and refuse it if the result breaks a rule."""
        try:
            self.trial.apply_update(update)
        except ValueError as exc:
            raise CloseConnection(CloseCode.POLICY_VIOLATION, "malformed update") from exc
        try:
            document.check_integrated(self.trial, update)
            document.check_change(self.doc, self.trial, languages=self.languages)
        except document.InvalidChange as exc:
            raise CloseConnection(CloseCode.POLICY_VIOLATION, str(exc)) from exc
        self._check_size(update)

    def _reset_trial(self) -> None:
        self.trial = document.fork(self.doc)
        self.size_bound = document.encoded_size(self.doc)

    def _check_size(self, update: bytes) -> None:
        limit = min(self.limits.max_document_bytes, self.limits.max_file_bytes)
        # Whatever the document holds arrived in some update, so the bytes of the state
        # at load plus those of every accepted update bound its encoded size from above
        # (merging only shrinks it): measure exactly only when the bound is too high.
        if self.size_bound + len(update) <= limit:
            self.size_bound += len(update)
            return
        total = document.encoded_size(self.trial)
        largest = document.measure(self.trial)[1]
        if largest > self.limits.max_file_bytes:
            raise CloseConnection(CloseCode.TOO_LARGE, "file too large")
        if total > self.limits.max_document_bytes:
            raise CloseConnection(CloseCode.TOO_LARGE, "document too large")
        self.size_bound = total

    async def _awareness(self, connection: Connection, message: protocol.AwarenessUpdate) -> None:
        if not connection.awareness.take():
            raise CloseConnection(CloseCode.TOO_MANY, "too many awareness messages per second")
        kept: list[protocol.AwarenessEntry] = []
        for entry in message.entries:
            if entry.size > self.limits.max_awareness_state_bytes:
                raise CloseConnection(CloseCode.TOO_LARGE, "awareness state too large")
            current = self.awareness.get(entry.client_id)
            if current is not None and current[2] != connection.id:
                # Another connection's client id (here or on another instance). The stock
                # y-websocket provider re-sends every awareness change it receives, its
                # peers' included, so this is normal traffic: drop the entry (relaying it
                # would let one user move or remove someone else's cursor), keep the socket.
                continue
            if entry.client_id not in connection.client_ids and entry.state is not None:
                if len(connection.client_ids) >= self.limits.max_awareness_clients:
                    raise CloseConnection(
                        CloseCode.POLICY_VIOLATION, "too many awareness client ids"
                    )
                connection.client_ids.add(entry.client_id)
            kept.append(entry)
        if not kept:
            return
        self._apply_awareness(tuple(kept), owner=connection.id)
        payload = (
            message.payload
            if len(kept) == len(message.entries)
            else protocol.encode_awareness([(e.client_id, e.clock, e.state) for e in kept])
        )
        self._broadcast(protocol.awareness_message(payload), exclude=connection)
        await self.publish(self.session_id, b"a", owned_awareness(connection.id, payload))

    def _apply_awareness(
        self, entries: tuple[protocol.AwarenessEntry, ...], owner: uuid.UUID
    ) -> None:
        for entry in entries:
            current = self.awareness.get(entry.client_id)
            if (
                current is None
                or entry.clock > current[0]
                or (entry.clock == current[0] and entry.state is None)
            ):
                if entry.state is None:
                    self.awareness.pop(entry.client_id, None)
                else:
                    self.awareness[entry.client_id] = (entry.clock, entry.state, owner)

    # --- from other instances, or from a REST write ------------------------------------

    def accepted_elsewhere(self, update: bytes) -> None:
        """An update persisted by someone else: apply it and pass it on."""
        self.doc.apply_update(update)
        self.trial.apply_update(update)
        self.size_bound += len(update)
        self._broadcast(create_update_message(update), exclude=None)

    def awareness_elsewhere(self, message: bytes) -> None:
        """Awareness from a connection on another instance (`owned_awareness`). Entries for
        a client id owned by a different connection are dropped, as are oversized states:
        an instance checks what it relays and what it receives alike."""
        if len(message) < 16:
            return
        owner = uuid.UUID(bytes=message[:16])
        try:
            entries = protocol.parse_awareness(message[16:])
        except protocol.MalformedMessage:
            return
        kept = tuple(
            entry
            for entry in entries
            if entry.size <= self.limits.max_awareness_state_bytes
            and ((current := self.awareness.get(entry.client_id)) is None or current[2] == owner)
        )
        if not kept:
            return
        self._apply_awareness(kept, owner=owner)
        payload = (
            message[16:]
            if len(kept) == len(entries)
            else protocol.encode_awareness([(e.client_id, e.clock, e.state) for e in kept])
        )
        self._broadcast(protocol.awareness_message(payload), exclude=None)

    def resync(self, updates: list[bytes]) -> None:
        """Apply the database's log (idempotent) and pass on whatever was new here."""
        before = self.doc.get_state()
        for update in updates:
            self.doc.apply_update(update)
        # Deletions do not move the state vector: send the difference, delete set included.
        missed = self.doc.get_update(before)
        if missed != document.EMPTY_UPDATE:
            self._broadcast(create_update_message(missed), exclude=None)
        self._reset_trial()
