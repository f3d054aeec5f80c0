"""Red team 2: the WebSocket upgrade path (tickets, Origin, credentials) under attack.

Every test runs real uvicorn instances on a real PostgreSQL database; the multi-instance
ones share one Redis, as a deployment with several API processes does.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from coderoom.auth.tickets import TICKET_SECONDS
from tests.redteam.conftest import (
    ALLOWED_ORIGIN,
    REDIS_URL,
    Account,
    Instance,
    StartInstance,
    StartProcess,
    make_admin,
    require_redis,
    sign_up,
)
from tests.support.services import REDIS_PREFIX


async def ticket_for(instance: Instance, account: Account) -> str:
    async with httpx.AsyncClient(base_url=instance.api) as http:
        response = await http.post("/auth/ws-tickets", headers=account.auth)
    assert response.status_code == 201, response.text
    ticket: str = response.json()["ticket"]
    return ticket


async def opens(url: str, **options: Any) -> dict[str, Any]:
    """What the probe says once the socket is open; raises InvalidStatus when refused."""
    async with connect(url, open_timeout=20, **options) as ws:
        said: dict[str, Any] = json.loads(await ws.recv())
        return said


async def refused_status(url: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await opens(url, **options)
    status: int = refused.value.response.status_code
    return status


async def shared_instances(start: StartInstance, pg_url: str, count: int = 2) -> list[Instance]:
    require_redis()
    return [await start(pg_url, redis_url=REDIS_URL) for _ in range(count)]


# --- Origin ------------------------------------------------------------------------------

HOSTILE_ORIGINS = [
    "https://evil.example",
    "null",  # sandboxed iframes, file:// pages, data: URLs
    "",
    "https://app.example.evil.example",  # allowed origin as a prefix
    "https://evil.example/https://app.example",  # ... or as a suffix
    "https://app.example@evil.example",  # userinfo trick
    "https://app.example.",  # trailing dot: another origin as far as the browser goes
    "https://app.example:8443",  # another port is another origin
    "http://app.example",  # scheme downgrade
    "https://xn--pp-8kc.example",  # IDN look-alike (Cyrillic a) as the browser sends it
    "https://evil.example, https://app.example",  # a list smuggled into one header
    "https://app.example%2f@evil.example",
]


@pytest.mark.parametrize("origin", HOSTILE_ORIGINS)
async def test_hostile_origins_are_refused_before_the_ticket_is_spent(
    ws_instances: StartInstance, pg_url: str, origin: str
) -> None:
    instance = await ws_instances(pg_url)
    account = await sign_up(instance.api)
    ticket = await ticket_for(instance, account)
    url = f"{instance.ws}/probe/whoami?ticket={ticket}"
    assert await refused_status(url, additional_headers={"Origin": origin}) == 403
    # Refused before the route ran: the ticket still opens a socket from the real site.
    said = await opens(url, origin=Origin(ALLOWED_ORIGIN))
    assert said["user_id"] == account.user_id


async def test_a_page_on_another_host_cannot_pass_as_same_origin(
    ws_instances: StartInstance, pg_url: str
) -> None:
    """Same-origin is judged against the Host the browser sent, which a page cannot
    choose: a page of evil.example reaching this server says Host: <this server>."""
    instance = await ws_instances(pg_url)
    account = await sign_up(instance.api)
    ticket = await ticket_for(instance, account)
    port = instance.host.rsplit(":", 1)[1]
    for origin in (f"http://localhost.evil.example:{port}", f"http://127.0.0.1.nip.io:{port}"):
        status = await refused_status(
            f"{instance.ws}/probe/whoami?ticket={ticket}", origin=Origin(origin)
        )
        assert status == 403


async def test_the_allowed_origin_matches_whatever_its_case(
    ws_instances: StartInstance, pg_url: str
) -> None:
    instance = await ws_instances(pg_url)
    account = await sign_up(instance.api)
    ticket = await ticket_for(instance, account)
    said = await opens(
        f"{instance.ws}/probe/whoami?ticket={ticket}", origin=Origin("HTTPS://APP.EXAMPLE")
    )
    assert said["user_id"] == account.user_id


# --- tickets across instances ------------------------------------------------------------


async def test_a_ticket_from_one_instance_opens_one_socket_on_another_and_no_more(
    ws_instances: StartInstance, pg_url: str
) -> None:
    first, second = await shared_instances(ws_instances, pg_url)
    account = await sign_up(first.api)
    ticket = await ticket_for(first, account)
    said = await opens(
        f"{second.ws}/probe/whoami", subprotocols=[Subprotocol(f"coderoom.ticket.{ticket}")]
    )
    assert said == {"user_id": account.user_id, "api_key_id": None}
    for instance in (first, second):
        assert await refused_status(f"{instance.ws}/probe/whoami?ticket={ticket}") == 401


async def test_racing_instances_open_exactly_one_socket_with_one_ticket(
    ws_instances: StartInstance, pg_url: str
) -> None:
    first, second = await shared_instances(ws_instances, pg_url)
    account = await sign_up(first.api)
    ticket = await ticket_for(first, account)

    async def attempt(instance: Instance) -> int:
        try:
            await opens(f"{instance.ws}/probe/whoami?ticket={ticket}")
        except InvalidStatus as exc:
            return exc.response.status_code
        return 101

    outcomes = await asyncio.gather(*(attempt(i) for i in (first, second) * 6))
    assert sorted(outcomes) == [101] + [401] * 11


async def test_the_shared_store_holds_a_hash_that_expires(
    ws_instances: StartInstance, pg_url: str
) -> None:
    """A Redis dump gives no usable ticket, and an unused one disappears by itself."""
    (instance,) = await shared_instances(ws_instances, pg_url, count=1)
    account = await sign_up(instance.api)
    ticket = await ticket_for(instance, account)
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(f"{REDIS_PREFIX}:ws-ticket:*")]
        assert keys, "the ticket was not stored under REDIS_PREFIX"
        for key in keys:
            assert ticket.encode() not in key
            assert ticket.removeprefix("wst_").encode() not in (await redis.get(key) or b"")
            assert 0 < await redis.ttl(key) <= TICKET_SECONDS
    finally:
        await redis.aclose()


async def test_a_disabled_user_ticket_is_refused_by_every_instance(
    ws_instances: StartInstance, pg_url: str
) -> None:
    first, second = await shared_instances(ws_instances, pg_url)
    admin = await sign_up(first.api)
    await make_admin(pg_url, admin.user_id)
    victim = await sign_up(first.api)
    ticket = await ticket_for(first, victim)
    async with httpx.AsyncClient(base_url=first.api) as http:
        assert (await http.get("/auth/me", headers=victim.auth)).status_code == 200  # cached
    async with httpx.AsyncClient(base_url=second.api) as http:
        disabled = await http.post(f"/admin/users/{victim.user_id}/disable", headers=admin.auth)
        assert disabled.status_code == 200, disabled.text
    # The revocation reaches the first instance through Redis: wait for that, not a time.
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(base_url=first.api) as http:
        while (await http.get("/auth/me", headers=victim.auth)).status_code != 401:
            assert time.monotonic() < deadline, "the first instance still accepts the user"
            await asyncio.sleep(0.02)
    assert await refused_status(f"{first.ws}/probe/whoami?ticket={ticket}") == 401


# --- which credentials open which socket ---------------------------------------------------


async def test_long_lived_credentials_in_the_url_are_not_accepted(
    ws_instances: StartInstance, pg_url: str
) -> None:
    """Only a single-use ticket may travel in a URL; an access token, refresh token or API
    key offered as ?ticket=, ?token= or ?access_token= opens nothing."""
    instance = await ws_instances(pg_url)
    account = await sign_up(instance.api)
    async with httpx.AsyncClient(base_url=instance.api) as http:
        key = (await http.post("/auth/api-keys", json={"name": "k"}, headers=account.auth)).json()
    for credential in (account.access_token, account.refresh_token, key["key"]):
        for name in ("ticket", "token", "access_token"):
            url = f"{instance.ws}/probe/whoami?{name}={credential}"
            assert await refused_status(url) == 401
        proto = [Subprotocol(f"coderoom.ticket.{credential}")]
        assert await refused_status(f"{instance.ws}/probe/whoami", subprotocols=proto) == 401


async def test_a_ticket_is_not_a_bearer_token_for_the_rest_api(
    ws_instances: StartInstance, pg_url: str
) -> None:
    instance = await ws_instances(pg_url)
    account = await sign_up(instance.api)
    ticket = await ticket_for(instance, account)
    async with httpx.AsyncClient(base_url=instance.api) as http:
        me = await http.get("/auth/me", headers={"Authorization": f"Bearer {ticket}"})
        more = await http.post("/auth/ws-tickets", headers={"Authorization": f"Bearer {ticket}"})
    assert me.status_code == 401
    assert more.status_code == 401
    assert ticket not in me.text


async def test_an_api_key_cannot_open_a_socket_meant_for_people(
    ws_instances: StartInstance, pg_url: str
) -> None:
    instance = await ws_instances(pg_url)
    account = await sign_up(instance.api)
    async with httpx.AsyncClient(base_url=instance.api) as http:
        key = (await http.post("/auth/api-keys", json={"name": "k"}, headers=account.auth)).json()
        bearer = {"Authorization": f"Bearer {key['key']}"}
        # ... nor trade itself for a ticket that would pass as the person.
        assert (await http.post("/auth/ws-tickets", headers=bearer)).status_code == 403
    assert await refused_status(f"{instance.ws}/probe/users-only", additional_headers=bearer) == 403


async def test_a_revoked_api_key_opens_no_socket_on_any_instance(
    ws_instances: StartInstance, pg_url: str
) -> None:
    first, second = await shared_instances(ws_instances, pg_url)
    account = await sign_up(first.api)
    async with httpx.AsyncClient(base_url=first.api) as http:
        key = (await http.post("/auth/api-keys", json={"name": "k"}, headers=account.auth)).json()
    bearer = {"Authorization": f"Bearer {key['key']}"}
    said = await opens(f"{second.ws}/probe/whoami", additional_headers=bearer)  # now cached
    assert said["api_key_id"] == key["id"]
    async with httpx.AsyncClient(base_url=first.api) as http:
        revoked = await http.delete(f"/auth/api-keys/{key['id']}", headers=account.auth)
        assert revoked.status_code == 204
    deadline = time.monotonic() + 10
    status = 101
    while status == 101:
        try:
            await opens(f"{second.ws}/probe/whoami", additional_headers=bearer)
        except InvalidStatus as exc:
            status = exc.response.status_code
        else:
            assert time.monotonic() < deadline, "the second instance still accepts a revoked key"
            await asyncio.sleep(0.02)
    assert status == 401


async def test_an_invalid_authorization_header_does_not_fall_back_to_a_ticket(
    ws_instances: StartInstance, pg_url: str
) -> None:
    """A client that sent a bad header is refused outright; the ticket stays unspent."""
    instance = await ws_instances(pg_url)
    account = await sign_up(instance.api)
    ticket = await ticket_for(instance, account)
    url = f"{instance.ws}/probe/whoami?ticket={ticket}"
    bad = {"Authorization": "Bearer not-a-token"}
    assert await refused_status(url, additional_headers=bad) == 401
    assert (await opens(url))["user_id"] == account.user_id


async def test_a_forged_forwarded_for_does_not_buy_more_upgrades(
    process_server: StartProcess, sqlite_file_url: str
) -> None:
    """With no TRUSTED_PROXIES, X-Forwarded-For is the client's word: each upgrade still
    counts against the peer's own API budget, whatever address it claims. (A real
    `coderoom serve`: uvicorn's own proxy-header handling, on by default and trusting
    127.0.0.1, must stay off, as it does in run_server.)"""
    server = process_server(sqlite_file_url, RATE_LIMIT_API="3/minute")
    statuses = []
    for i in range(4):
        forged = {"X-Forwarded-For": f"203.0.113.{i}"}
        statuses.append(await refused_status(f"{server.ws}/probe", additional_headers=forged))
    assert statuses == [403, 403, 403, 429]
