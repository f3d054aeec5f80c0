"""Bounded, append-only logs of events by key, followed live by any number of readers.

    writer ──append──▶ Logs ──watch(key)──▶ Tail (a bounded local copy) ──follow──▶ readers

Two implementations of one interface:
- `MemoryLogs`: the log *is* the local copy (embedded mode, one process).
- `RedisLogs`: a Redis Stream per key (`XADD … MAXLEN ~ n`, `EXPIRE` after the end), so a
  writer in one process (a worker) reaches readers in any other (API instances). In each
  reading process one relay task per watched key copies new entries into the local Tail
  (one blocking `XREAD` however many readers watch that key), and stops with its last reader.

Entry ids are Redis Stream ids (`<ms>-<seq>`, monotone); the memory log makes ids of the
same shape (`<n>-0`), so a reader resumes after any id it was given, with neither gaps nor
duplicates while the entries are retained. A reader whose position fell out of the bounded
window is told so (`Lagged`) and continues from the oldest entry still held: nothing a
reader does (or fails to do) slows a writer.

Why by hand: no maintained library relays Redis Streams to many local asyncio readers with
a bounded window; `broadcaster`-style pub/sub loses what was sent before a reader joined.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

Fields = Mapping[str, str]

#: A relay's blocking read; below the Redis client's socket timeout (infra/queue.py).
BLOCK_MS = 2000
RETRY_SECONDS = 0.5


def parse_id(text: str) -> tuple[int, int]:
    """A log id as a comparable pair; ValueError when `text` is not one."""
    millis, _, seq = text.partition("-")
    pair = (int(millis), int(seq or "0"))
    if pair[0] < 0 or pair[1] < 0:
        raise ValueError(text)
    return pair


@dataclass(frozen=True)
class Entry:
    id: str
    fields: Fields
    #: What readers made of it, made once per process however many read it.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Lagged:
    """Entries are missing before the next one: `missed` of them (None: not known)."""

    missed: int | None


@dataclass
class Tail:
    """The last `maxlen` entries of one log, as this process knows them."""

    maxlen: int
    entries: deque[tuple[tuple[int, int], Entry]] = field(default_factory=deque)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)  # what was there is here
    readers: int = 0
    _seq: int = 0

    def add(self, entry: Entry) -> None:
        key = parse_id(entry.id)
        if self.entries and key <= self.entries[-1][0]:
            return  # already held (a relay re-read after a reconnect)
        self.entries.append((key, entry))
        if len(self.entries) > self.maxlen:
            self.entries.popleft()
        self.changed.set()
        self.changed = asyncio.Event()  # readers wait on the event they saw

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def after(self, position: tuple[int, int] | None) -> tuple[list[Entry], bool]:
        """Entries after `position` (all when None), and whether they follow it directly
        (False: `position` is older than the oldest entry held, some may be missing)."""
        if not self.entries:
            return [], True
        if position is None:
            return [e for _, e in self.entries], True
        if position < self.entries[0][0]:
            return [e for _, e in self.entries], False
        # Newest entries are the common case for a live reader: scan from the end.
        found: list[Entry] = []
        for key, entry in reversed(self.entries):
            if key <= position:
                break
            found.append(entry)
        found.reverse()
        return found, True


async def follow(
    tail: Tail, after: str | None, *, idle: float | None = None
) -> AsyncIterator[Entry | Lagged | None]:
    """Entries after `after` as they come; `Lagged` where some are missing (the writers
    number each key's entries `n` = 1, 2, 3…, so a gap is seen wherever it happened: a full
    write buffer, a trimmed stream, a reader that fell behind); None after `idle` seconds
    without any entry, so the caller may look elsewhere, then go on."""
    position = parse_id(after) if after else None
    last_n: int | None = 0 if position is None else None
    while True:
        waiting = tail.changed
        entries, contiguous = tail.after(position)
        if not contiguous:
            first_n = int(entries[0].fields.get("n", "0")) if entries else 0
            if last_n is None or not first_n:  # how many is not known: say so
                yield Lagged(None)
                last_n = None
            # else the numbering below counts what fell out of the window
        for entry in entries:
            position = parse_id(entry.id)
            n = int(entry.fields.get("n", "0"))
            if last_n is not None and n > last_n + 1:
                yield Lagged(n - last_n - 1)
            last_n = n
            yield entry
        if not entries:
            try:
                async with asyncio.timeout(idle):
                    await waiting.wait()
            except TimeoutError:
                yield None


class Logs(Protocol):
    def append(self, key: str, fields: Fields, *, numbered: bool = True) -> None:
        """Add an entry without waiting (a full buffer drops it, never blocks). `numbered`:
        stamp it `n` = 1, 2, 3… (one writer per key only; see `follow`)."""

    def end(self, key: str) -> None:
        """Nothing more will be appended: keep the log for the retention time, then drop it."""

    async def flush(self) -> None:
        """Wait until what was appended so far is readable elsewhere (tests, shutdown)."""

    def watch(self, key: str) -> contextlib.AbstractAsyncContextManager[Tail]:
        """Follow `key` for as long as the context is open."""

    async def count(self, key: str, delta: int) -> int | None:
        """Add `delta` to a counter shared by every process (kept `retain_seconds` after
        its last change) and return the new value; None when it cannot be reached."""

    async def close(self) -> None: ...


class MemoryLogs:
    """In this process only: each key's log is a Tail kept `retain_seconds` after its end."""

    def __init__(self, *, maxlen: int, retain_seconds: float) -> None:
        self.maxlen = maxlen
        self.retain_seconds = retain_seconds
        self._tails: dict[str, Tail] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._counts: dict[str, int] = {}

    def _tail(self, key: str) -> Tail:
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = Tail(self.maxlen)
            tail.loaded.set()
        return tail

    def append(self, key: str, fields: Fields, *, numbered: bool = True) -> None:
        handle = self._expiry.pop(key, None)
        if handle is not None:  # written again (a session's next run): kept again
            handle.cancel()
        tail = self._tail(key)
        n = tail.next_seq()
        tail.add(Entry(f"{n}-0", {**fields, "n": str(n)} if numbered else dict(fields)))

    def end(self, key: str) -> None:
        handle = self._expiry.pop(key, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._expiry[key] = loop.call_later(self.retain_seconds, self._drop, key)

    def _drop(self, key: str) -> None:
        self._expiry.pop(key, None)
        tail = self._tails.get(key)
        if tail is not None and tail.readers:  # still followed: drop after the last reader
            self.end(key)
            return
        self._tails.pop(key, None)

    async def flush(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[Tail]:
        tail = self._tail(key)
        tail.readers += 1
        try:
            yield tail
        finally:
            tail.readers -= 1
            if not tail.readers and not tail.entries and key not in self._expiry:
                self._tails.pop(key, None)  # watched, never written: nothing to keep

    async def count(self, key: str, delta: int) -> int | None:
        value = self._counts.get(key, 0) + delta
        if value > 0:
            self._counts[key] = value
        else:
            self._counts.pop(key, None)
        return value

    def held(self) -> int:
        return len(self._tails)

    async def close(self) -> None:
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
        self._tails.clear()
        self._counts.clear()


@dataclass
class _Relay:
    tail: Tail
    task: asyncio.Task[None]
    readers: int = 0
    stopped: bool = False


class RedisLogs:
    """A Redis Stream per key. Appends are buffered (at most `buffer_entries`; past that
    they are dropped, which readers see as a gap in `n`) and written by one background
    task, in pipelines, so a writer never waits for Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        maxlen: int,
        retain_seconds: float,
        buffer_entries: int = 10_000,
    ) -> None:
        self.redis = redis
        self.maxlen = maxlen
        self.retain_seconds = retain_seconds
        self.buffer_entries = buffer_entries
        self._pending: deque[tuple[str, dict[Any, Any] | None]] = deque()  # None: end
        self._counters: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None
        self._relays: dict[str, _Relay] = {}

    # -- writing ------------------------------------------------------------------------

    def append(self, key: str, fields: Fields, *, numbered: bool = True) -> None:
        stamp: dict[str, str] = {}
        if numbered:
            n = self._counters[key] = self._counters.get(key, 0) + 1
            stamp["n"] = str(n)
        if len(self._pending) >= self.buffer_entries:
            return  # dropped: readers see the gap in `n`
        self._pending.append((key, {**fields, **stamp}))
        self._kick()

    def end(self, key: str) -> None:
        self._counters.pop(key, None)
        self._pending.append((key, None))  # always kept: a log must expire
        self._kick()

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = list(self._pending)
            self._pending.clear()
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key, fields in batch:
                        if fields is None:
                            pipe.expire(key, int(self.retain_seconds))
                        else:
                            pipe.xadd(key, dict(fields), maxlen=self.maxlen, approximate=False)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                # Lost, not retried: readers fall back to the stored result.
                log.warning("eventlog.write_failed", entries=len(batch), error=str(exc))

    async def flush(self) -> None:
        await self._idle.wait()

    async def count(self, key: str, delta: int) -> int | None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, delta)
                pipe.expire(key, int(self.retain_seconds))
                value, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("eventlog.count_failed", error=str(exc))
            return None
        return int(value)

    # -- reading ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[Tail]:
        relay = self._relays.get(key)
        if relay is None:
            tail = Tail(self.maxlen)
            relay = _Relay(tail, asyncio.create_task(asyncio.sleep(0)))
            relay.task = asyncio.create_task(self._relay(key, relay))
            self._relays[key] = relay
        relay.readers += 1
        try:
            with contextlib.suppress(TimeoutError):  # Redis down: live entries only
                async with asyncio.timeout(BLOCK_MS / 1000):
                    await relay.tail.loaded.wait()
            yield relay.tail
        finally:
            relay.readers -= 1
            if relay.readers == 0 and self._relays.get(key) is relay:
                del self._relays[key]
                # Not awaited: redis-py can swallow a cancel that lands as a blocking read
                # returns; `stopped` ends the loop at its next turn then.
                relay.stopped = True
                relay.task.cancel()

    async def _relay(self, key: str, relay: _Relay) -> None:
        tail = relay.tail
        last = "0-0"
        while not relay.stopped:
            try:
                block = BLOCK_MS if tail.loaded.is_set() else None
                found: Any = await self.redis.xread({key: last}, count=1000, block=block)
            except (RedisError, OSError) as exc:
                log.warning("eventlog.relay_failed", error=str(exc))
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if isinstance(found, dict):  # RESP3 answers with a map
                found = list(found.items())
            for _stream, items in found or ():
                for raw_id, raw_fields in items:
                    entry_id = _text(raw_id)
                    tail.add(Entry(entry_id, {_text(k): _text(v) for k, v in raw_fields.items()}))
                    last = entry_id
            tail.loaded.set()

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.flush()
        tasks: list[asyncio.Task[None]] = []
        for relay in self._relays.values():
            relay.stopped = True
            tasks.append(relay.task)
        if self._writer is not None:
            tasks.append(self._writer)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=BLOCK_MS / 1000 + 1)
        self._relays.clear()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
