"""WebSocket authentication, Origin checks and the upgrade path, through a real uvicorn.

A probe route (`/api/v1/probe/whoami`) is added to the real app for these tests: it does
what every WebSocket endpoint does (authenticate before accepting, accept with the ticket's
subprotocol) and reports who it saw. Everything in front of it is the production stack.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, WebSocket
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from coderoom import migrations
from coderoom.api import create_app
from coderoom.auth.tickets import TICKET_SECONDS, MemoryTickets, RedisTickets
from coderoom.auth.websocket import authenticate_websocket
from coderoom.infra.logging import WithoutQueryStrings
from tests.conftest import make_settings
from tests.support.services import REDIS_PREFIX, free_port

ALLOWED_ORIGIN = "https://app.example"
PASSWORD = "correct horse battery staple"

Server = Callable[..., Awaitable[str]]


def _probe(app: FastAPI) -> None:
    @app.websocket("/api/v1/probe/whoami")
    async def whoami(websocket: WebSocket) -> None:
        state = websocket.app.state.coderoom
        caller = await authenticate_websocket(
            websocket, state.sessionmaker, state.auth, allow_api_keys=True
        )
        await websocket.accept(subprotocol=caller.subprotocol)
        await websocket.send_json(
            {
                "user_id": str(caller.user.id),
                "api_key_id": str(caller.api_key_id) if caller.api_key_id else None,
            }
        )
        await websocket.close()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('ws') / 'ws.sqlite3'}"
    migrations.upgrade(make_settings(database_url=url))
    return url


@pytest.fixture
async def serve(database: str) -> AsyncIterator[Server]:
    url = database
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> str:
        settings = make_settings(database_url=url, cors_origins=[ALLOWED_ORIGIN], **overrides)
        app = create_app(settings)
        _probe(app)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        )
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        while not server.started:  # wait for the listening socket, not for a fixed time
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return f"127.0.0.1:{port}"

    yield start
    for server, task in servers:
        server.should_exit = True
        await task


async def _sign_up(host: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=f"http://{host}/api/v1") as http:
        email = f"ws-{uuid.uuid4().hex[:8]}@example.com"
        response = await http.post("/auth/register", json={"email": email, "password": PASSWORD})
        response.raise_for_status()
        body = response.json()
        return body["user"]["id"], body["access_token"]


async def _ticket(host: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://{host}/api/v1") as http:
        response = await http.post("/auth/ws-tickets", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["expires_in"] == TICKET_SECONDS
        ticket: str = body["ticket"]
        return ticket


def _problem(refused: InvalidStatus) -> dict[str, Any]:
    assert refused.response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(refused.response.body or b"{}")
    return body


async def test_a_ticket_in_the_subprotocol_opens_the_socket_as_its_user(serve: Server) -> None:
    host = await serve()
    user_id, token = await _sign_up(host)
    ticket = await _ticket(host, token)
    async with connect(
        f"ws://{host}/api/v1/probe/whoami", subprotocols=[Subprotocol(f"coderoom.ticket.{ticket}")]
    ) as ws:
        assert ws.subprotocol == f"coderoom.ticket.{ticket}"
        assert json.loads(await ws.recv()) == {"user_id": user_id, "api_key_id": None}
        assert ws.response is not None
        assert ws.response.headers["X-Correlation-ID"]


async def test_a_ticket_works_once(serve: Server) -> None:
    host = await serve()
    _user_id, token = await _sign_up(host)
    ticket = await _ticket(host, token)
    async with connect(f"ws://{host}/api/v1/probe/whoami?ticket={ticket}") as ws:
        await ws.recv()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://{host}/api/v1/probe/whoami?ticket={ticket}"):
            pass
    assert refused.value.response.status_code == 401
    problem = _problem(refused.value)
    assert problem["code"] == "invalid_ticket"
    assert ticket not in json.dumps(problem)


async def test_no_credentials_is_a_401_problem_on_the_upgrade(serve: Server) -> None:
    host = await serve()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://{host}/api/v1/probe/whoami"):
            pass
    assert refused.value.response.status_code == 401
    assert _problem(refused.value)["code"] == "invalid_token"


async def test_a_forged_ticket_is_refused(serve: Server) -> None:
    host = await serve()
    forged = "wst_" + "A" * 43
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"ws://{host}/api/v1/probe/whoami",
            subprotocols=[Subprotocol(f"coderoom.ticket.{forged}")],
        ):
            pass
    assert refused.value.response.status_code == 401


async def test_non_browser_clients_may_send_an_access_token_header(serve: Server) -> None:
    host = await serve()
    user_id, token = await _sign_up(host)
    async with connect(
        f"ws://{host}/api/v1/probe/whoami",
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as ws:
        assert json.loads(await ws.recv())["user_id"] == user_id


async def test_an_api_key_header_names_the_key(serve: Server) -> None:
    host = await serve()
    _user_id, token = await _sign_up(host)
    async with httpx.AsyncClient(base_url=f"http://{host}/api/v1") as http:
        created = await http.post(
            "/auth/api-keys",
            json={"name": "ci"},
            headers={"Authorization": f"Bearer {token}"},
        )
        created.raise_for_status()
    key = created.json()
    async with connect(
        f"ws://{host}/api/v1/probe/whoami",
        additional_headers={"Authorization": f"Bearer {key['key']}"},
    ) as ws:
        assert json.loads(await ws.recv())["api_key_id"] == key["id"]


async def test_api_keys_cannot_get_tickets(serve: Server) -> None:
    host = await serve()
    _user_id, token = await _sign_up(host)
    async with httpx.AsyncClient(base_url=f"http://{host}/api/v1") as http:
        created = await http.post(
            "/auth/api-keys", json={"name": "ci"}, headers={"Authorization": f"Bearer {token}"}
        )
        key = created.json()["key"]
        refused = await http.post("/auth/ws-tickets", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403


async def test_a_page_of_another_site_cannot_open_a_socket(serve: Server) -> None:
    host = await serve()
    _user_id, token = await _sign_up(host)
    ticket = await _ticket(host, token)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"ws://{host}/api/v1/probe/whoami?ticket={ticket}",
            origin=Origin("https://evil.example"),
        ):
            pass
    assert refused.value.response.status_code == 403
    assert _problem(refused.value)["code"] == "origin_not_allowed"
    # The refusal came before the route: the ticket is still unused.
    async with connect(
        f"ws://{host}/api/v1/probe/whoami?ticket={ticket}", origin=Origin(ALLOWED_ORIGIN)
    ) as ws:
        await ws.recv()


async def test_the_service_own_origin_is_allowed(serve: Server) -> None:
    host = await serve()
    _user_id, token = await _sign_up(host)
    ticket = await _ticket(host, token)
    async with connect(
        f"ws://{host}/api/v1/probe/whoami?ticket={ticket}", origin=Origin(f"http://{host}")
    ) as ws:
        await ws.recv()


async def test_upgrades_count_against_the_api_rate_limit(serve: Server) -> None:
    host = await serve(rate_limit_api="3/minute")
    for _ in range(3):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{host}/api/v1/probe/whoami"):
                pass
        assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as limited:
        async with connect(f"ws://{host}/api/v1/probe/whoami"):
            pass
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"]
    assert _problem(limited.value)["code"] == "rate_limited"


async def test_an_unused_ticket_expires() -> None:
    now = [1000.0]
    tickets = MemoryTickets(clock=lambda: now[0])
    user = uuid.uuid4()
    ticket = await tickets.issue(user)
    now[0] += TICKET_SECONDS + 0.001
    assert await tickets.redeem(ticket) is None


async def test_a_shared_ticket_is_redeemed_by_exactly_one_of_racing_instances() -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        # Two stores on one Redis are two API instances.
        first = RedisTickets(redis, f"{REDIS_PREFIX}:ws-ticket")
        second = RedisTickets(redis, f"{REDIS_PREFIX}:ws-ticket")
        user = uuid.uuid4()
        ticket = await first.issue(user)
        results = await asyncio.gather(*(s.redeem(ticket) for s in (first, second) * 5))
        assert [r for r in results if r is not None] == [user]
        keys = [k async for k in redis.scan_iter(f"{REDIS_PREFIX}:ws-ticket:*")]
        assert keys == []
        assert all(ticket.encode() not in k for k in keys)
    finally:
        await redis.aclose()


def test_uvicorn_websocket_lines_lose_their_query_string() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/api/v1/probe/whoami?ticket=wst_secret"),
        None,
    )
    assert WithoutQueryStrings().filter(record)
    assert "wst_secret" not in record.getMessage()
    assert "/api/v1/probe/whoami" in record.getMessage()
