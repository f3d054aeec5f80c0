"""Red team 2: what a real `coderoom serve` writes to its log while it is used and attacked.

An attacker who can read the logs must learn no credential and no program from them
(BRIEF: secrets never in logs). Each test drives the real server over HTTP and WebSocket,
then reads the log file an operator's collector would ship.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from tests.redteam.conftest import PASSWORD, ProcessServer, StartProcess

SOURCE = "print('RT2-LOG-SOURCE-91d2')"
STDIN = "RT2-LOG-STDIN-77ab"


async def upgrade_attempts(server: ProcessServer, ticket: str, api_key: str) -> None:
    """The three ways a credential travels on an upgrade, against a path with no route:
    whatever the route, the server's own lines see the request."""
    attempts = [
        (f"{server.ws}/nowhere?ticket={ticket}", {}),
        (
            f"{server.ws}/nowhere",
            {"subprotocols": [Subprotocol(f"coderoom.ticket.{ticket}")]},
        ),
        (f"{server.ws}/nowhere", {"additional_headers": {"Authorization": f"Bearer {api_key}"}}),
    ]
    for url, options in attempts:
        with pytest.raises(InvalidStatus):
            async with connect(url, open_timeout=20, **options):  # type: ignore[arg-type]
                pass


async def use_everything(server: ProcessServer) -> list[str]:
    """Sign up, sign in, refresh, make and use an API key, get a ticket, run a program,
    invite and join; return every secret the server handed out or was given."""
    email = f"rt2-log-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=server.api, timeout=60) as http:
        registered = (
            await http.post("/auth/register", json={"email": email, "password": PASSWORD})
        ).json()
        login = (await http.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
        refreshed = (
            await http.post("/auth/refresh", json={"refresh_token": login["refresh_token"]})
        ).json()
        auth = {"Authorization": f"Bearer {refreshed['access_token']}"}
        key = (await http.post("/auth/api-keys", headers=auth, json={"name": "ci"})).json()["key"]
        ran = await http.post(
            "/sandbox/executions",
            headers={"Authorization": f"Bearer {key}"},
            json={"language": "python", "source": SOURCE, "stdin": STDIN},
        )
        assert ran.status_code == 202, ran.text
        ticket = (await http.post("/auth/ws-tickets", headers=auth)).json()["ticket"]
        session = (
            await http.post(
                "/sessions",
                headers=auth,
                json={"title": "t", "language": "python", "source": SOURCE},
            )
        ).json()
        invite = (
            await http.post(f"/sessions/{session['id']}/invites", headers=auth, json={})
        ).json()["token"]
        await http.post("/sessions/join", headers=auth, json={"token": invite})
        # A failed sign-in and a bad ticket are logged as failures, not with what was sent.
        await http.post("/auth/login", json={"email": email, "password": "RT2-WRONG-PASSWORD"})
    await upgrade_attempts(server, ticket, key)
    return [
        PASSWORD,
        "RT2-WRONG-PASSWORD",
        registered["access_token"],
        registered["refresh_token"],
        login["access_token"],
        login["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        key,
        ticket,
        invite,
        "RT2-LOG-SOURCE",
        STDIN,
    ]


def leaked(server: ProcessServer, secrets: list[str]) -> list[str]:
    text = server.log_text()
    return [secret[:16] + "…" for secret in secrets if secret in text]


async def test_no_credential_or_program_reaches_the_log_at_info(
    process_server: StartProcess, sqlite_file_url: str
) -> None:
    server = process_server(sqlite_file_url, LOG_LEVEL="INFO")
    secrets = await use_everything(server)
    assert "/nowhere" in server.log_text()  # the upgrades were logged, without their query
    assert leaked(server, secrets) == []


async def test_no_credential_reaches_the_log_at_debug(
    process_server: StartProcess, sqlite_file_url: str
) -> None:
    server = process_server(sqlite_file_url, LOG_LEVEL="DEBUG")
    secrets = await use_everything(server)
    assert leaked(server, secrets) == []
