"""The rooms this process has loaded, and what keeps them honest over time.

- Loading a room subscribes to its bus channel *first*, then reads the log (so nothing
  published in between is missed), seeding the document when the log is empty.
- A tick every `access_check_seconds` re-reads the roles of everyone connected (one query
  for all rooms): a removed participant or a deleted session is closed (4403, 4404), a role
  change applies to the next message (an editor made viewer is read-only at once). It also
  records activity, refreshes presence, compacts long logs and unloads idle rooms.

Role changes are polled rather than pushed: one query per tick bounds the delay to the tick
whatever happened to a pub/sub message, in embedded and Redis mode alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coderoom.core.closecodes import CloseCode
from coderoom.infra import metrics
from coderoom.infra.db import session_scope
from coderoom.live import bus as bus_kinds
from coderoom.live import document, store
from coderoom.live.bus import Bus
from coderoom.live.limits import LiveLimits
from coderoom.live.presence import Presence
from coderoom.live.room import Connection, Room
from coderoom.sessions import service as sessions_service
from coderoom.sessions.models import CodingSession

log = structlog.get_logger(__name__)

EntryName = Callable[[str, str], str]  # (language, source) → the entry file's name
ACTIVITY_SECONDS = 5.0
PRESENCE_REFRESH_SECONDS = 5.0


async def initial_log(
    db: AsyncSession, session: CodingSession, entry_name: EntryName
) -> tuple[list[bytes], bool]:
    """The session's log, or (when it has none yet) its deterministic seed and True."""
    updates = await store.load(db, session.id)
    if updates:
        return updates, False
    entry = entry_name(session.language, session.source)
    return [document.seed(source=session.source, entry=entry, language=session.language)], True


class Hub:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        presence: Presence,
        limits: LiveLimits,
        entry_name: EntryName,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.presence = presence
        self.limits = limits
        self.entry_name = entry_name
        self.writer = store.UpdateWriter(sessionmaker)
        self.rooms: dict[uuid.UUID, Room] = {}
        self.loading: dict[uuid.UUID, asyncio.Task[Room]] = {}
        self.compacting: set[uuid.UUID] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.tick_task: asyncio.Task[None] | None = None
        self.recorded_activity: dict[uuid.UUID, float] = {}
        self.presence_at = 0.0

    # --- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        self.writer.start()
        await self.bus.start(self._bus_message, self._resync)
        self.tick_task = asyncio.create_task(self._ticks(), name="live.ticks")

    async def stop(self) -> None:
        """Close every connection (1012: reconnect elsewhere) and stop. Nothing is lost: each
        accepted update is in the database already."""
        for room in self.rooms.values():
            for connection in list(room.connections.values()):
                connection.close(CloseCode.SERVICE_RESTART, "server restarting")
        if self.tick_task is not None:
            self.tick_task.cancel()
            await asyncio.gather(self.tick_task, return_exceptions=True)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.bus.stop()
        await self.writer.stop()

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- rooms and connections ---------------------------------------------------------

    def refusal(self, session_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        """Why a new connection may not join (a cap), or None."""
        if self.presence.user_connections(user_id) >= self.limits.max_connections_per_user:
            return "too many live connections for this user"
        if self.presence.connections(session_id) >= self.limits.max_connections_per_session:
            return "too many live connections to this session"
        return None

    async def room(self, session: CodingSession) -> Room:
        found = self.rooms.get(session.id)
        if found is not None:
            return found
        task = self.loading.get(session.id)
        if task is None:
            task = asyncio.create_task(self._load(session))
            self.loading[session.id] = task
            task.add_done_callback(lambda _: self.loading.pop(session.id, None))
        return await asyncio.shield(task)

    async def _load(self, session: CodingSession) -> Room:
        await self.bus.subscribe(session.id)
        async with session_scope(self.sessionmaker) as db:
            updates, seeded = await initial_log(db, session, self.entry_name)
            if seeded:
                await store.append(db, session.id, updates)
        room = Room(
            session.id,
            document.load(updates),
            limits=self.limits,
            persist=self.writer.write,
            publish=self.bus.publish,
            on_accepted=self._accepted,
        )
        room.appended = len(updates)
        self.rooms[session.id] = room
        log.info("live.room_loaded", session_id=str(session.id), updates=len(updates))
        return room

    async def attach(self, session: CodingSession, connection: Connection) -> Room:
        """Load the session's room if needed and add the connection to it."""
        while True:
            room = await self.room(session)
            # Unloading may have happened while this task waited: join only a live room
            # (no await between this check and the join).
            if self.rooms.get(session.id) is room:
                room.join(connection)
                break
        await self.presence.joined(room.session_id, connection.user_id)
        self._gauge()
        return room

    def _gauge(self) -> None:
        metrics.LIVE_SESSIONS.set(sum(1 for room in self.rooms.values() if room.connections))
        metrics.LIVE_CONNECTIONS.labels(kind="websocket").set(
            sum(len(room.connections) for room in self.rooms.values())
        )

    async def detach(self, room: Room, connection: Connection) -> None:
        await room.leave(connection)
        await self.presence.left(room.session_id, connection.user_id)
        self._gauge()

    def _accepted(self, room: Room) -> None:
        if room.appended >= self.limits.compact_every and room.session_id not in self.compacting:
            self._spawn(self._compact(room.session_id), "live.compact")

    async def deliver(self, session_id: uuid.UUID, update: bytes) -> None:
        """An update committed outside a room (a REST write): pass it to live clients here
        and on every other instance."""
        room = self.rooms.get(session_id)
        if room is not None:
            room.accepted_elsewhere(update)
        await self.bus.publish(session_id, bus_kinds.UPDATE, update)

    # --- from the bus ------------------------------------------------------------------

    def _bus_message(self, session_id: uuid.UUID, kind: bytes, payload: bytes) -> None:
        room = self.rooms.get(session_id)
        if room is None:
            return
        if kind == bus_kinds.UPDATE:
            try:
                room.accepted_elsewhere(payload)
            except ValueError:
                log.warning("live.bad_bus_update", session_id=str(session_id))
        elif kind == bus_kinds.AWARENESS:
            room.awareness_elsewhere(payload)

    def _resync(self, session_id: uuid.UUID | None) -> None:
        targets = [session_id] if session_id is not None else list(self.rooms)
        for target in targets:
            self._spawn(self._reread(target), "live.resync")

    async def _reread(self, session_id: uuid.UUID) -> None:
        try:
            async with session_scope(self.sessionmaker) as db:
                updates = await store.load(db, session_id)
        except Exception as exc:  # noqa: BLE001 - the next resync or message catches up
            log.warning("live.resync_failed", session_id=str(session_id), error=str(exc))
            return
        room = self.rooms.get(session_id)
        if room is not None:
            room.resync(updates)

    # --- the tick ----------------------------------------------------------------------

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self.limits.access_check_seconds)
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                log.warning("live.tick_failed", error=str(exc))

    async def _tick(self) -> None:
        busy = [room for room in self.rooms.values() if room.connections]
        if busy:
            async with session_scope(self.sessionmaker) as db:
                roles = await sessions_service.roles(db, [room.session_id for room in busy])
                await self._record_activity(db, busy)
            for room in busy:
                self._enforce(room, roles.get(room.session_id))
        now = time.monotonic()
        if now - self.presence_at >= PRESENCE_REFRESH_SECONDS:
            self.presence_at = now
            await self.presence.refresh()
        for room in list(self.rooms.values()):
            if not room.connections and now - room.idle_since >= self.limits.idle_seconds:
                await self._unload(room)

    def _enforce(self, room: Room, roles: dict[uuid.UUID, str] | None) -> None:
        for connection in list(room.connections.values()):
            if roles is None:
                connection.close(CloseCode.GONE, "the session was deleted")
                continue
            role = roles.get(connection.user_id)
            if role is None:
                connection.close(CloseCode.FORBIDDEN, "no longer a participant")
            elif role != connection.role:
                connection.role = role  # a viewer's next update is refused

    async def _record_activity(self, db: AsyncSession, rooms: list[Room]) -> None:
        for room in rooms:
            edited = room.last_edit_at
            recorded = self.recorded_activity.get(room.session_id, 0.0)
            if edited is not None and edited - recorded >= ACTIVITY_SECONDS:
                self.recorded_activity[room.session_id] = edited
                await sessions_service.record_activity(
                    db, room.session_id, at=datetime.fromtimestamp(edited, UTC)
                )

    async def _compact(self, session_id: uuid.UUID) -> None:
        self.compacting.add(session_id)
        try:
            async with session_scope(self.sessionmaker) as db:
                merged = await store.compact(db, session_id)
                if merged is not None:
                    await sessions_service.record_activity(
                        db, session_id, at=datetime.now(UTC), source=merged.entry_text
                    )
            room = self.rooms.get(session_id)
            if room is not None:
                room.appended = 0
        except Exception as exc:  # noqa: BLE001 - the log stays valid, only longer
            log.warning("live.compact_failed", session_id=str(session_id), error=str(exc))
        finally:
            self.compacting.discard(session_id)

    async def _unload(self, room: Room) -> None:
        del self.rooms[room.session_id]
        self.recorded_activity.pop(room.session_id, None)
        await self.bus.unsubscribe(room.session_id)
        if room.appended > 1:
            with contextlib.suppress(Exception):
                await self._compact(room.session_id)
        log.info("live.room_unloaded", session_id=str(room.session_id))
