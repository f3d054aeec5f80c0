"""Invites are links: `url` is the web app's join page under the public URL."""

from __future__ import annotations

import httpx
import structlog

from tests.conftest import make_settings
from tests.support.app import running
from tests.support.factories import create_session, invite, user


async def test_the_invite_url_defaults_to_the_requests_origin(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    session = await create_session(client, ada)
    created = await invite(client, ada, session["id"])
    assert created["url"] == f"http://testserver/join/{created['token']}"


async def test_public_url_decides_the_invite_url(sqlite_url: str) -> None:
    settings = make_settings(database_url=sqlite_url, public_url="https://code.example.com/")
    async with running(settings) as client:
        ada = await user(client, "ada")
        session = await create_session(client, ada)
        created = await invite(client, ada, session["id"])
    assert created["url"] == f"https://code.example.com/join/{created['token']}"


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "code.example.com"}


async def invite_url_through_proxy(sqlite_url: str, trusted_proxies: str) -> str:
    settings = make_settings(database_url=sqlite_url, trusted_proxies=trusted_proxies)
    async with running(settings) as client:  # httpx's ASGI transport's peer is 127.0.0.1
        ada = await user(client, "ada")
        session = await create_session(client, ada)
        response = await client.post(
            f"/api/v1/sessions/{session['id']}/invites", json={}, headers={**ada, **FORWARDED}
        )
    url: str = response.json()["url"]
    return url


async def test_forwarded_host_is_ignored_from_an_untrusted_peer(sqlite_url: str) -> None:
    assert (await invite_url_through_proxy(sqlite_url, "")).startswith("http://testserver/join/")


async def test_forwarded_host_counts_from_a_trusted_proxy(sqlite_url: str) -> None:
    url = await invite_url_through_proxy(sqlite_url, "127.0.0.1")
    assert url.startswith("https://code.example.com/join/")


async def test_the_access_log_never_carries_an_invite_token(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        await client.get("/join/Vt3bq0secret")
    paths = [entry.get("path") for entry in logs if entry.get("event") == "request"]
    assert paths == ["/join/[redacted]"]
