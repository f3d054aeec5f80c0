"""Cost of the protective stack: all middleware on vs the bare app, side by side.

Measures in-process (httpx ASGITransport, no sockets), so the figures are the stack's own
cost: correlation ids and access log, security headers, CORS, rate limiting against Redis
on loopback (one Lua call plus one read per limiter), error boundary, body guard. The route
is `GET /api/v1/auth/me` with a valid token (auth dependency + one indexed SELECT), the same
in both apps. Then the sanitizer on 1 KiB and 64 KiB of text vs `html.escape`.

    .venv/bin/python bench/http_stack.py [--requests 2000] [--redis redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import logging
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from coderoom import migrations
from coderoom.api import create_app
from coderoom.config import Settings
from coderoom.core.text import sanitize_plain_text


def settings_for(db: Path, redis_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=f"sqlite+aiosqlite:///{db}",
        redis_url=redis_url,
        rate_limit_api="1000000/minute",
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        log_level="WARNING",
    )


async def measure(app: FastAPI, headers: dict[str, str], requests: int) -> tuple[float, float]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(50):
            await client.get("/api/v1/auth/me", headers=headers)
        latencies = []
        start = time.perf_counter()
        for _ in range(requests):
            t = time.perf_counter()
            response = await client.get("/api/v1/auth/me", headers=headers)
            latencies.append(time.perf_counter() - t)
            assert response.status_code == 200, response.text
        elapsed = time.perf_counter() - start
    return requests / elapsed, statistics.median(latencies) * 1000


async def http_figures(requests: int, redis_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        settings = settings_for(db, redis_url)
        await asyncio.to_thread(migrations.upgrade, settings)
        logging.disable(logging.INFO)
        full = create_app(settings)
        bare = create_app(settings)
        bare.user_middleware = []  # same routes and lifespan, no middleware at all
        async with full.router.lifespan_context(full), bare.router.lifespan_context(bare):
            transport = httpx.ASGITransport(app=full)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
                tokens = (
                    await c.post(
                        "/api/v1/auth/register",
                        json={"email": "bench@example.com", "password": "bench-password-123"},
                    )
                ).json()
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            rows = []
            for _ in range(2):  # alternate to even out drift
                rows.append(("bare app", *await measure(bare, headers, requests // 2)))
                rows.append(("all middleware", *await measure(full, headers, requests // 2)))
    bare_rps = statistics.mean(r[1] for r in rows if r[0] == "bare app")
    full_rps = statistics.mean(r[1] for r in rows if r[0] == "all middleware")
    bare_p50 = statistics.mean(r[2] for r in rows if r[0] == "bare app")
    full_p50 = statistics.mean(r[2] for r in rows if r[0] == "all middleware")
    print(f"GET /api/v1/auth/me, {requests} sequential requests each, Redis at {redis_url}")
    print(f"{'':18}{'req/s':>10}{'p50 ms':>10}")
    print(f"{'bare app':18}{bare_rps:10.0f}{bare_p50:10.3f}")
    print(f"{'all middleware':18}{full_rps:10.0f}{full_p50:10.3f}")
    print(f"stack adds {full_p50 - bare_p50:.3f} ms at p50 (target < 1 ms)")


def sanitizer_figures() -> None:
    unit = "<p>Hello <b>world</b> & <script>x()</script> a < b; caf\u00e9 </p>\n"
    print("\nsanitizer, per call (median of 200):")
    print(f"{'size':>8}{'nh3 sanitizer us':>20}{'html.escape us':>18}")
    for size in (1024, 64 * 1024):
        text = (unit * (size // len(unit) + 1))[:size]
        timings = {}
        for name, fn in (("nh3", sanitize_plain_text), ("escape", html.escape)):
            samples = []
            for _ in range(200):
                t = time.perf_counter()
                fn(text)
                samples.append(time.perf_counter() - t)
            timings[name] = statistics.median(samples) * 1e6
        print(f"{size // 1024:>6}Ki{timings['nh3']:20.1f}{timings['escape']:18.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    asyncio.run(http_figures(args.requests, args.redis))
    sanitizer_figures()
