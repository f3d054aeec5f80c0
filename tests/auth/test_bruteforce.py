"""Brute-force limits on sign-in: per client IP, and per account whatever the IP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from coderoom.api import create_app
from tests.conftest import make_settings
from tests.support.factories import PASSWORD, register, unique_email


@pytest.fixture
async def strict_app(sqlite_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        database_url=sqlite_url,
        rate_limit_auth="5/15minutes",
        login_failure_limit="10/15minutes",
        trusted_proxies="127.0.0.1",
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"X-Forwarded-For": ip},
    )


async def test_sixth_plain_get_to_login_is_429(strict_app: FastAPI) -> None:
    async with client_from(strict_app, "198.51.100.1") as client:
        statuses = [(await client.get("/api/v1/auth/login")).status_code for _ in range(6)]
        last = await client.get("/api/v1/auth/login")
    assert statuses[:5] == [405] * 5
    assert statuses[5] == 429
    assert last.status_code == 429
    body = last.json()
    assert last.headers["content-type"] == "application/problem+json"
    assert body["limit"] == "auth"
    assert "auth" in body["detail"]
    assert int(last.headers["retry-after"]) >= 1
    assert last.headers["ratelimit-limit"] == "5"
    assert last.headers["ratelimit-remaining"] == "0"


async def test_login_and_register_share_the_auth_budget(strict_app: FastAPI) -> None:
    async with client_from(strict_app, "198.51.100.2") as client:
        first = await client.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
        )
        assert first.headers["ratelimit-remaining"] == "4"
        for _ in range(4):
            await client.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "x"})
        refused = await client.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
        )
    assert refused.status_code == 429


async def test_other_ips_and_routes_are_unaffected(strict_app: FastAPI) -> None:
    async with client_from(strict_app, "198.51.100.3") as client:
        for _ in range(6):
            await client.get("/api/v1/auth/login")
        assert (await client.get("/api/v1/health")).status_code == 200
    async with client_from(strict_app, "198.51.100.4") as other:
        assert (await other.get("/api/v1/auth/login")).status_code == 405


async def test_account_locks_after_ten_failures_from_any_ip(strict_app: FastAPI) -> None:
    email = unique_email()
    async with client_from(strict_app, "203.0.113.1") as owner:
        await register(owner, email=email)
    # Ten failures spread over five IPs (two each, inside every IP's own budget).
    for attempt in range(10):
        async with client_from(strict_app, f"203.0.113.{10 + attempt // 2}") as client:
            wrong = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": "wrong-password"}
            )
            assert wrong.status_code == 401
    async with client_from(strict_app, "203.0.113.99") as fresh_ip:
        locked = await fresh_ip.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        other = await fresh_ip.post(
            "/api/v1/auth/login", json={"email": unique_email(), "password": "whatever-else"}
        )
    assert locked.status_code == 429
    assert locked.json()["code"] == "account_locked"
    assert int(locked.headers["retry-after"]) >= 1
    assert other.status_code == 401  # another account is not locked


async def test_ipv6_clients_are_counted_per_64(strict_app: FastAPI) -> None:
    for host in range(1, 7):
        async with client_from(strict_app, f"2001:db8:1:2::{host:x}") as client:
            response = await client.get("/api/v1/auth/login")
    assert response.status_code == 429
    async with client_from(strict_app, "2001:db8:1:3::1") as neighbour:
        assert (await neighbour.get("/api/v1/auth/login")).status_code == 405
