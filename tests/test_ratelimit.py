"""Rate limiting: headers, exemptions, fail-open/closed, and one budget across processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import structlog

from coderoom.infra.keys import RedisNames
from coderoom.infra.ratelimit import Quota, RateLimiter
from tests.conftest import make_settings
from tests.support.app import running
from tests.support.cluster import RedisServer
from tests.support.factories import bearer, register
from tests.support.server import Server, wait_until
from tests.support.services import REDIS_PREFIX, REDIS_URL, free_port, tcp_reachable, unavailable


@pytest.fixture
def clean_redis() -> Iterator[str]:
    if not tcp_reachable("127.0.0.1", 6379):
        unavailable("Redis", "127.0.0.1:6379 refused")
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


async def test_limited_responses_carry_ratelimit_headers(sqlite_url: str) -> None:
    async with running(make_settings(database_url=sqlite_url, rate_limit_api="3/minute")) as c:
        responses = [await c.get("/api/v1/auth/me") for _ in range(4)]
    assert [r.headers.get("ratelimit-remaining") for r in responses[:3]] == ["2", "1", "0"]
    assert all(r.headers["ratelimit-limit"] == "3" for r in responses)
    assert 0 < int(responses[0].headers["ratelimit-reset"]) <= 60
    refused = responses[3]
    assert refused.status_code == 429
    assert refused.json()["limit"] == "api"
    assert int(refused.headers["retry-after"]) >= 1


async def test_health_routes_are_never_limited(sqlite_url: str) -> None:
    async with running(make_settings(database_url=sqlite_url, rate_limit_api="1/minute")) as c:
        for path in ["/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready"] * 3:
            response = await c.get(path)
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers


async def test_disabled_rate_limiting_sends_no_headers(sqlite_url: str) -> None:
    settings = make_settings(
        database_url=sqlite_url, rate_limit_enabled=False, rate_limit_api="1/minute"
    )
    async with running(settings) as c:
        for _ in range(3):
            response = await c.get("/api/v1/auth/me")
            assert response.status_code == 401
            assert "ratelimit-limit" not in response.headers


async def test_redis_down_fails_open_with_an_error_log(sqlite_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(database_url=sqlite_url, redis_url=dead, rate_limit_api="1/minute")
    async with running(settings) as c:
        with structlog.testing.capture_logs() as logs:
            responses = [await c.get("/api/v1/auth/me") for _ in range(3)]
    assert [r.status_code for r in responses] == [401, 401, 401]
    assert any(e["event"] == "ratelimit.unavailable" and e["log_level"] == "error" for e in logs)


async def test_redis_down_fails_closed_when_asked(sqlite_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(database_url=sqlite_url, redis_url=dead, rate_limit_fail_closed=True)
    async with running(settings) as c:
        response = await c.get("/api/v1/auth/me")
        health = await c.get("/api/v1/health/live")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert health.status_code == 200


@pytest.mark.server
def test_two_processes_share_one_budget_through_redis(
    tmp_path: Path, sqlite_url: str, clean_redis: str
) -> None:
    servers = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            servers.append(
                Server(
                    tmp_path / name,
                    sqlite_url,
                    REDIS_URL=clean_redis,
                    RATE_LIMIT_AUTH="5/15minutes",
                )
            )
        for server in servers:
            wait_until(server.ready)
        statuses = [
            httpx.get(f"{servers[i % 2].url}/api/v1/auth/login").status_code for i in range(6)
        ]
    finally:
        for server in servers:
            server.stop()
    # Three requests to each process; alone, neither would have reached 5.
    assert statuses == [405, 405, 405, 405, 405, 429]


async def test_failed_sign_in_does_not_spend_the_execution_limit(sqlite_url: str) -> None:
    settings = make_settings(database_url=sqlite_url, rate_limit_execution="1/day")
    body = {"language": "python", "source": "print(1)"}
    async with running(settings) as c:
        anonymous = [await c.post("/api/v1/sandbox/executions", json=body) for _ in range(3)]
        forged = await c.post(
            "/api/v1/sandbox/executions", json=body, headers={"Authorization": "Bearer x.y.z"}
        )
        tokens = await register(c)
        first = await c.post("/api/v1/sandbox/executions", json=body, headers=bearer(tokens))
        second = await c.post("/api/v1/sandbox/executions", json=body, headers=bearer(tokens))
        other = await c.post(
            "/api/v1/sandbox/executions", json=body, headers=bearer(await register(c))
        )
    assert [r.status_code for r in anonymous] == [401, 401, 401]
    assert forged.status_code == 401
    assert first.status_code == 202, first.text
    assert (second.status_code, second.json()["limit"]) == (429, "execution")
    assert other.status_code == 202  # the limit is per user, not per address


async def test_docs_assets_do_not_spend_the_api_limit(sqlite_url: str) -> None:
    # A day-long window: a sliding window that crossed a minute boundary mid-test could let
    # one more request through and make the count flaky.
    settings = make_settings(database_url=sqlite_url, rate_limit_api="2/day")
    async with running(settings) as c:
        page = await c.get("/api/v1/docs")
        assets = [
            await c.get(f"/api/v1/docs/assets/{name}")
            for name in ("swagger-ui.css", "swagger-ui-bundle.js", "favicon.png") * 2
        ]
        schema = await c.get("/api/v1/openapi.json")
        third = await c.get("/api/v1/auth/me")
    assert page.status_code == 200
    assert [a.status_code for a in assets] == [200] * 6
    assert all("ratelimit-limit" not in a.headers for a in assets)
    assert schema.status_code == 200
    assert third.status_code == 429


async def test_one_pipeline_counts_exactly_like_the_library(clean_redis: str) -> None:
    """hit_all (one round trip for all quotas) agrees with limits' own hit + window stats."""
    ours = RateLimiter.create(clean_redis, RedisNames(REDIS_PREFIX))
    theirs = RateLimiter.create(clean_redis, RedisNames(REDIS_PREFIX))
    tight, loose = Quota.parse("tight", "3/minute"), Quota.parse("loose", "100/hour")
    try:
        seen = [await ours.hit_all([(tight, "client-a"), (loose, "client-a")]) for _ in range(5)]
        assert [[d.allowed for d in row] for row in seen] == [
            [True, True],
            [True, True],
            [True, True],
            [False, True],
            [False, True],
        ]
        assert [row[0].remaining for row in seen] == [2, 1, 0, 0, 0]
        assert [row[1].remaining for row in seen] == [99, 98, 97, 96, 95]
        assert all(row[0].reset_after >= 1 for row in seen[3:])
        # The library, reading the same counters, agrees on what is left.
        library = await theirs.hit(loose, "client-a")
        assert (library.allowed, library.remaining) == (True, 94)
        refused = await theirs.exhausted(tight, "client-a")
        assert refused is not None
        assert (await ours.hit_all([(tight, "client-b")]))[0].remaining == 2  # per key
    finally:
        await ours.close()
        await theirs.close()


async def test_the_pipeline_survives_redis_forgetting_its_scripts(tmp_path: Path) -> None:
    private = RedisServer(tmp_path)  # SCRIPT FLUSH is server-wide: not on the shared Redis
    limiter = RateLimiter.create(private.url, RedisNames(REDIS_PREFIX))
    quota = Quota.parse("q", "10/minute")
    try:
        assert (await limiter.hit_all([(quota, "c")]))[0].remaining == 9
        admin = redis.Redis.from_url(private.url)
        admin.script_flush()  # as after a Redis restart
        admin.close()
        assert (await limiter.hit_all([(quota, "c")]))[0].remaining == 8
    finally:
        await limiter.close()
        private.stop()
