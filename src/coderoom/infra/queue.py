"""The job queue: SAQ on Redis.

Why SAQ: asyncio-native like the rest of the service; worker heartbeats plus a sweeper that
re-runs the jobs of a worker that died; per-job timeouts; abort (cancel) that reaches the
worker running the job; and result waiting over Redis pub/sub. (arq is in maintenance-only
mode, taskiq's Redis stream broker cannot cancel, rq does not requeue a killed worker's jobs,
Celery has no asyncio support.)
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq.queue.redis import RedisQueue

from coderoom.infra.keys import RedisNames

#: What a caller catches when the queue is unreachable.
QueueError = RedisError


def make_pool(
    redis_url: str, *, max_connections: int, pool_timeout: float
) -> BlockingConnectionPool:
    """A bounded pool: at most `max_connections`, callers wait up to `pool_timeout` for a
    free one (redis-py's default pool grows without bound under load and keeps them all)."""
    return BlockingConnectionPool.from_url(
        redis_url,
        max_connections=max_connections,
        timeout=pool_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=2,
        # Longer than the workers' blocking dequeue (1 s), short enough that a hung Redis
        # cannot hang a request or a shutdown.
        socket_timeout=5,
        health_check_interval=10,
    )


def make_redis(redis_url: str, *, max_connections: int = 32, pool_timeout: float = 5.0) -> Redis:
    """A client whose connections survive a Redis restart: stale pooled connections are
    retried with backoff instead of failing the request that happens to pick them."""
    pool = make_pool(redis_url, max_connections=max_connections, pool_timeout=pool_timeout)
    return Redis.from_pool(pool)  # the client owns the pool and closes it


def make_queue(redis: Redis, names: RedisNames) -> RedisQueue:
    return RedisQueue(redis, name=names.queue)
