"""The bounded event logs behind live executions: positions, gaps, expiry, and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from coderoom.infra.eventlog import Entry, Lagged, MemoryLogs, RedisLogs, Tail, follow, parse_id
from tests.support.services import REDIS_PREFIX, REDIS_URL, unavailable


async def take(source: AsyncIterator[Entry | Lagged | None], count: int) -> list[Entry | Lagged]:
    found: list[Entry | Lagged] = []
    async with asyncio.timeout(10):
        while len(found) < count:
            item = await anext(source)
            if item is not None:
                found.append(item)
    return found


def values(items: list[Entry | Lagged]) -> list[str | int | None]:
    return [i.fields["v"] if isinstance(i, Entry) else i.missed for i in items]


def test_ids_compare_as_redis_stream_ids() -> None:
    assert parse_id("1733330000000-2") > parse_id("1733330000000-1") > parse_id("9-0")
    with pytest.raises(ValueError, match="x"):
        parse_id("x-1")


async def test_a_reader_resumes_right_after_the_id_it_was_given() -> None:
    logs = MemoryLogs(maxlen=100, retain_seconds=60)
    for v in "abcde":
        logs.append("k", {"v": v})
    async with logs.watch("k") as tail:
        whole = await take(follow(tail, None), 5)
        assert values(whole) == list("abcde")
        second = whole[1]
        assert isinstance(second, Entry)
        assert values(await take(follow(tail, second.id), 3)) == list("cde")


async def test_a_reader_left_behind_by_the_window_is_told_it_lagged() -> None:
    logs = MemoryLogs(maxlen=4, retain_seconds=60)
    logs.append("k", {"v": "first"})
    async with logs.watch("k") as tail:
        reader = follow(tail, None)
        assert values(await take(reader, 1)) == ["first"]
        for i in range(10):  # the writer never waits for the reader
            logs.append("k", {"v": str(i)})
        assert values(await take(reader, 5)) == [6, "6", "7", "8", "9"]


async def test_a_late_reader_of_a_trimmed_log_is_told_how_much_it_missed() -> None:
    logs = MemoryLogs(maxlen=3, retain_seconds=60)
    for i in range(8):
        logs.append("k", {"v": str(i)})
    async with logs.watch("k") as tail:
        assert values(await take(follow(tail, None), 4)) == [5, "5", "6", "7"]


async def test_a_live_reader_gets_what_is_appended_after_it_started() -> None:
    logs = MemoryLogs(maxlen=10, retain_seconds=60)
    async with logs.watch("k") as tail:
        reader = follow(tail, None)
        pending = asyncio.ensure_future(take(reader, 1))
        await asyncio.sleep(0)  # the reader is waiting now
        logs.append("k", {"v": "late"})
        assert values(await pending) == ["late"]


async def test_an_ended_log_is_dropped_after_its_retention() -> None:
    logs = MemoryLogs(maxlen=10, retain_seconds=0.01)
    logs.append("k", {"v": "x"})
    dropped = asyncio.get_running_loop().create_future()
    logs.end("k")
    asyncio.get_running_loop().call_later(0.05, dropped.set_result, None)
    await dropped
    assert logs.held() == 0


def test_a_tail_keeps_at_most_maxlen_entries() -> None:
    tail = Tail(maxlen=2)
    for i in range(1, 6):
        tail.add(Entry(f"{i}-0", {"v": str(i)}))
    assert [e.fields["v"] for _, e in tail.entries] == ["4", "5"]


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:
        await client.aclose()
        unavailable("Redis", str(exc))
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_redis_logs_reach_a_reader_in_another_client_and_expire(redis: Redis) -> None:
    key = f"{REDIS_PREFIX}:test:{uuid.uuid4().hex}"
    writer = RedisLogs(redis, maxlen=3, retain_seconds=30)
    reader = RedisLogs(Redis.from_url(REDIS_URL), maxlen=3, retain_seconds=30)
    try:
        for i in range(5):
            writer.append(key, {"v": str(i)})
        writer.end(key)
        await writer.flush()
        assert await redis.xlen(key) == 3  # trimmed exactly
        assert 0 < await redis.ttl(key) <= 30
        async with reader.watch(key) as tail:
            follower = follow(tail, None)
            assert values(await take(follower, 4)) == [2, "2", "3", "4"]
            writer.append(key, {"v": "5"})
            assert values(await take(follower, 1)) == ["5"]
    finally:
        await writer.close()
        await reader.close()
        await reader.redis.aclose()
        await redis.delete(key)
