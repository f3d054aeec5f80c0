"""Authenticating a request: the principal cache vs a database lookup per request.

Side by side in one run, interleaved in rounds, in-process (httpx ASGITransport): the same
app on the same PostgreSQL database, `GET /api/v1/auth/me` with a valid access token, once
with AUTH_CACHE_SECONDS=5 (the default) and once with 0 (a user lookup on every request,
the behaviour before the cache). Also an API key on `GET /api/v1/sandbox/executions`, and
the cost of wrong keys: a random one and one that differs from a real key in its last
character (lookup is by SHA-256, so the two must cost the same). Prints database statements
per request, req/s and p50/p95 latency.

    .venv/bin/python bench/auth_cache.py [--requests 1000] [--rounds 3] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
import uuid
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import event

from coderoom import migrations
from coderoom.api import create_app
from coderoom.config import Settings


def settings_for(url: str, cache_seconds: float) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=url,
        rate_limit_enabled=False,  # the limiter is another bench's subject
        auth_cache_seconds=cache_seconds,
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        log_level="WARNING",
    )


async def admin(sql: str, base: str) -> None:
    connection = await asyncpg.connect(base)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class Run:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.statements = 0

        def count(*_: Any) -> None:
            self.statements += 1

        event.listen(app.state.coderoom.engine.sync_engine, "before_cursor_execute", count)

    async def measure(
        self, path: str, headers: dict[str, str], requests: int, status: int
    ) -> tuple[list[float], int]:
        before = self.statements
        latencies = []
        for _ in range(requests):
            t = time.perf_counter()
            response = await self.client.get(path, headers=headers)
            latencies.append(time.perf_counter() - t)
            assert response.status_code == status, response.text
        return latencies, self.statements - before


async def start(url: str, cache_seconds: float) -> tuple[FastAPI, httpx.AsyncClient, Any]:
    app = create_app(settings_for(url, cache_seconds))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    return app, client, lifespan


def row(name: str, latencies: list[float], statements: int) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95)] * 1000
    rate = len(latencies) / sum(latencies)
    per = statements / len(latencies)
    return f"| {name} | {per:.2f} | {rate:.0f} | {p50:.3f} | {p95:.3f} |"


async def main(requests: int, rounds: int, base: str) -> None:
    logging.disable(logging.WARNING)
    name = f"coderoom_bench_{uuid.uuid4().hex[:8]}"
    await admin(f'CREATE DATABASE "{name}"', base)
    url = f"{base.rsplit('/', 1)[0]}/{name}"
    try:
        await asyncio.to_thread(migrations.upgrade, settings_for(url, 5))
        cached_app, cached, cached_life = await start(url, 5)
        uncached_app, uncached, uncached_life = await start(url, 0)
        body = (
            await cached.post(
                "/api/v1/auth/register",
                json={"email": "bench@example.com", "password": "bench-password-1"},
            )
        ).json()
        token = {"Authorization": f"Bearer {body['access_token']}"}
        key = (
            await cached.post("/api/v1/auth/api-keys", json={"name": "bench"}, headers=token)
        ).json()["key"]
        key_header = {"Authorization": f"Bearer {key}"}
        near = {"Authorization": f"Bearer {key[:-1]}{'A' if key[-1] != 'A' else 'B'}"}
        random_key = {"Authorization": f"Bearer crk_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"}
        runs = {"cached": Run(cached_app, cached), "uncached": Run(uncached_app, uncached)}
        results: dict[str, tuple[list[float], int]] = {}

        def add(label: str, measured: tuple[list[float], int]) -> None:
            latencies, statements = results.get(label, ([], 0))
            results[label] = (latencies + measured[0], statements + measured[1])

        me, executions = "/api/v1/auth/me", "/api/v1/sandbox/executions"
        for run in runs.values():  # warm-up: pools, caches, code paths
            await run.measure(me, token, 50, 200)
            await run.measure(executions, key_header, 50, 200)
        wrong = [("wrong key: random", random_key), ("wrong key: last char", near)]
        for round_ in range(rounds):
            for label, run in runs.items():
                add(f"access token, {label}", await run.measure(me, token, requests, 200))
                add(
                    f"API key, {label}",
                    await run.measure(executions, key_header, requests // 2, 200),
                )
            for label, headers in wrong if round_ % 2 == 0 else reversed(wrong):
                add(label, await runs["cached"].measure(me, headers, requests // 2, 401))
        print(f"PostgreSQL {url.rsplit('@', 1)[-1]}, {rounds} rounds, interleaved\n")
        print("| request | DB statements / request | req/s | p50 ms | p95 ms |")
        print("| --- | --- | --- | --- | --- |")
        for label in (
            "access token, cached",
            "access token, uncached",
            "API key, cached",
            "API key, uncached",
            "wrong key: random",
            "wrong key: last char",
        ):
            print(row(label, *results[label]))
        for client, lifespan in ((cached, cached_life), (uncached, uncached_life)):
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', base)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds, args.postgres))
