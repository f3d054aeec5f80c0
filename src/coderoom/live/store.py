"""The update log in the database: append, load, compact. Flushes, never commits, except
`UpdateWriter`, which is the unit-of-work boundary of the live path (like a job wrapper).

Compaction reads a session's rows up to some id, merges them into one snapshot row and
deletes what it merged, in one transaction. Because Yjs updates commute and are idempotent,
rows appended meanwhile (by any instance) are simply left for next time, and two instances
compacting at once at worst leave two overlapping snapshots: no lock is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

import structlog
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from coderoom.infra.db import translate_connection_errors
from coderoom.live import document
from coderoom.live.models import LiveUpdate

log = structlog.get_logger(__name__)

DELETE_CHUNK = 1000
#: At most this many updates go to the database in one INSERT (group commit).
MAX_BATCH = 256
#: Batches in flight at once (each writer holds one pooled connection): a batch waits for a
#: free writer, not for the previous commit, so one slow commit does not delay the rest.
WRITERS = 2


async def load(db: AsyncSession, session_id: uuid.UUID) -> list[bytes]:
    result = await db.execute(
        select(LiveUpdate.data).where(LiveUpdate.session_id == session_id).order_by(LiveUpdate.id)
    )
    return [bytes(data) for data in result.scalars()]


async def count(db: AsyncSession, session_id: uuid.UUID) -> int:
    result = await db.execute(
        select(func.count()).select_from(LiveUpdate).where(LiveUpdate.session_id == session_id)
    )
    return int(result.scalar_one())


async def append(db: AsyncSession, session_id: uuid.UUID, updates: list[bytes]) -> None:
    if updates:
        await db.execute(
            insert(LiveUpdate),
            [{"session_id": session_id, "data": u, "snapshot": False} for u in updates],
        )


async def compact(db: AsyncSession, session_id: uuid.UUID) -> document.Contents | None:
    """Replace the session's rows by one snapshot; the merged contents, or None if there was
    nothing to merge."""
    result = await db.execute(
        select(LiveUpdate.id, LiveUpdate.data)
        .where(LiveUpdate.session_id == session_id)
        .order_by(LiveUpdate.id)
    )
    rows = list(result.tuples())
    if len(rows) < 2:
        return None
    doc = document.load([bytes(data) for _, data in rows])
    await db.execute(
        insert(LiveUpdate).values(session_id=session_id, data=doc.get_update(), snapshot=True)
    )
    # Exactly the rows merged, not `id <= max`: ids are handed out at INSERT but rows become
    # visible at COMMIT, so a row with a lower id may commit after the read above; a range
    # delete would remove an update the snapshot does not hold.
    merged = [row_id for row_id, _ in rows]
    for start in range(0, len(merged), DELETE_CHUNK):
        await db.execute(
            delete(LiveUpdate)
            .where(LiveUpdate.id.in_(merged[start : start + DELETE_CHUNK]))
            .execution_options(synchronize_session=False)
        )
    return document.contents(doc)


_INSERT = insert(LiveUpdate.__table__)  # type: ignore[arg-type]


@dataclass
class _Pending:
    session_id: uuid.UUID
    data: bytes
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class UpdateWriter:
    """Appends updates from every room of the process, many per transaction.

    `write` returns once the update is committed: the caller broadcasts only then, so no
    peer ever sees an update a crash could lose. Batching what arrives while a commit is in
    flight keeps the database at one round trip per batch, not per keystroke."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        engine = sessionmaker.kw["bind"]
        assert isinstance(engine, AsyncEngine)
        self.engine = engine
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._run(), name=f"live.update_writer.{n}") for n in range(WRITERS)
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
        while not self.queue.empty():
            self.queue.get_nowait().done.cancel()

    async def write(self, session_id: uuid.UUID, data: bytes) -> None:
        pending = _Pending(session_id, data)
        self.queue.put_nowait(pending)
        await pending.done

    async def _run(self) -> None:
        # Each writer keeps one connection: a pool checkout per batch (pre-ping, reset on
        # return) cost more round trips than the INSERT itself. A failure drops it.
        connection: AsyncConnection | None = None
        try:
            while True:
                batch = [await self.queue.get()]
                while len(batch) < MAX_BATCH and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                try:
                    connection = connection or await self._connect()
                    await self._insert(connection, batch)
                except Exception:  # noqa: BLE001 - each update gets its own verdict below
                    await self._discard(connection)
                    connection = None
                    # One row may be what failed (its session deleted a moment ago): retry
                    # one by one so the others' updates still go through.
                    for pending in batch:
                        try:
                            connection = connection or await self._connect()
                            await self._insert(connection, [pending])
                        except Exception as exc:  # noqa: BLE001 - reported to its writer
                            await self._discard(connection)
                            connection = None
                            log.warning("live.persist_failed", error=str(exc))
                            if not pending.done.done():
                                pending.done.set_exception(exc)
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_result(None)
        finally:
            await self._discard(connection)

    async def _connect(self) -> AsyncConnection:
        with translate_connection_errors():
            connection = await self.engine.connect()
            if self.engine.dialect.name == "postgresql":
                return await connection.execution_options(isolation_level="AUTOCOMMIT")
            return connection

    @staticmethod
    async def _discard(connection: AsyncConnection | None) -> None:
        """Close a connection that failed (None: the next batch opens a new one)."""
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
                await connection.close()
        return

    async def _insert(self, connection: AsyncConnection, batch: list[_Pending]) -> None:
        # One multi-row INSERT per batch. On PostgreSQL in autocommit mode (a single
        # statement is atomic): one round trip, where BEGIN/COMMIT and the ORM session's
        # bookkeeping were most of the cost (bench/live.py). SQLite gets an explicit
        # transaction: its driver's AUTOCOMMIT left rows uncommitted (the kill -9 test in
        # tests/live/test_durability.py caught it).
        rows = [{"session_id": p.session_id, "data": p.data, "snapshot": False} for p in batch]
        with translate_connection_errors():
            if self.engine.dialect.name == "postgresql":
                await connection.execute(_INSERT, rows)
            else:
                async with connection.begin():
                    await connection.execute(_INSERT, rows)
