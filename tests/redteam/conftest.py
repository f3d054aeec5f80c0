"""Red team 2: the real service, attacked from outside.

Two ways of running it, both real HTTP and real WebSocket clients, nothing mocked:
- `process_server`: `python -m coderoom serve` in a child process of its own, its log in a
  file the tests read (what an operator's log collector would get);
- `ws_instances`: the production app in this process under a real uvicorn, with a probe
  WebSocket route that does what every WebSocket endpoint does (authenticate before
  accepting, accept with the ticket's subprotocol). Several instances share one PostgreSQL
  database and one Redis, as a multi-instance deployment does.

Findings still open are marked `xfail(strict=True, reason="RT2-n: …")`: they fail the run
the day the hole is closed, so the marker is removed with the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, WebSocket

from coderoom import migrations
from coderoom.api import create_app
from coderoom.auth.websocket import authenticate_websocket
from tests.conftest import make_settings
from tests.support.services import (
    REDIS_PREFIX,
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    tcp_reachable,
    unavailable,
)

PASSWORD = "correct horse battery staple"
ALLOWED_ORIGIN = "https://app.example"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = create_postgres_database()
    try:
        migrations.upgrade(make_settings(database_url=url))
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture(scope="module")
def sqlite_file_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('rt2') / 'rt2.sqlite3'}"
    migrations.upgrade(make_settings(database_url=url))
    return url


def require_redis() -> None:
    if not tcp_reachable("127.0.0.1", 6379):
        unavailable("Redis", "nothing listens on 127.0.0.1:6379")


async def make_admin(pg: str, user_id: str) -> None:
    connection = await asyncpg.connect(pg, timeout=5)
    try:
        await connection.execute(
            "UPDATE users SET is_admin = true WHERE id = $1", uuid.UUID(user_id)
        )
    finally:
        await connection.close()


@dataclass
class Account:
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def sign_up(api: str) -> Account:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        email = f"rt2-{uuid.uuid4().hex[:10]}@example.com"
        response = await http.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.text
        body = response.json()
        return Account(body["user"]["id"], body["access_token"], body["refresh_token"])


# --- a real `coderoom serve` process ------------------------------------------------------


class ProcessServer:
    """`python -m coderoom serve` with its own environment, port and log file."""

    def __init__(self, tmp_path: Path, database_url: str, *args: str, **env: str) -> None:
        self.port = free_port()
        self.log = tmp_path / f"server-{self.port}.log"
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "REDIS_", "RATE_LIMIT_", "LOG_"))
        }
        environment.update(
            {
                "ENVIRONMENT": "test",
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "DATABASE_URL": database_url,
                "REDIS_PREFIX": f"{REDIS_PREFIX}-{self.port}",
                "LOG_FORMAT": "console",
                "ARGON2_MEMORY_KIB": "1024",
                "ARGON2_TIME_COST": "1",
                "RATE_LIMIT_API": "100000/minute",
                "RATE_LIMIT_AUTH": "100000/minute",
                "RATE_LIMIT_SESSION": "100000/minute",
                "RATE_LIMIT_EXECUTION": "100000/minute",
                "PYTHONPATH": str(REPO / "src"),
                **env,
            }
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "coderoom", "serve", *args],
                cwd=tmp_path,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api/v1"
        self.ws = f"ws://127.0.0.1:{self.port}/api/v1"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.api}/health/live", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)  # polling a condition with a deadline, not a fixed wait
        raise AssertionError(f"server not ready:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


StartProcess = Callable[..., ProcessServer]


@pytest.fixture
def process_server(tmp_path: Path) -> Iterator[StartProcess]:
    started: list[ProcessServer] = []

    def start(database_url: str, *args: str, **env: str) -> ProcessServer:
        server = ProcessServer(tmp_path, database_url, *args, **env)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


# --- in-process instances with a probe WebSocket route -----------------------------------


def add_probes(app: FastAPI) -> None:
    async def whoami(websocket: WebSocket, allow_api_keys: bool) -> None:
        state = websocket.app.state.coderoom
        caller = await authenticate_websocket(
            websocket, state.sessionmaker, state.auth, allow_api_keys=allow_api_keys
        )
        await websocket.accept(subprotocol=caller.subprotocol)
        await websocket.send_json(
            {
                "user_id": str(caller.user.id),
                "api_key_id": str(caller.api_key_id) if caller.api_key_id else None,
            }
        )
        await websocket.close()

    @app.websocket("/api/v1/probe/whoami")
    async def keys_allowed(websocket: WebSocket) -> None:
        await whoami(websocket, True)

    @app.websocket("/api/v1/probe/users-only")
    async def users_only(websocket: WebSocket) -> None:
        await whoami(websocket, False)


@dataclass
class Instance:
    host: str

    @property
    def api(self) -> str:
        return f"http://{self.host}/api/v1"

    @property
    def ws(self) -> str:
        return f"ws://{self.host}/api/v1"


StartInstance = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def ws_instances() -> AsyncIterator[StartInstance]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(database_url: str, **overrides: Any) -> Instance:
        values: dict[str, Any] = {"cors_origins": [ALLOWED_ORIGIN], **overrides}
        settings = make_settings(database_url=database_url, **values)
        app = create_app(settings)
        add_probes(app)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        )
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        while not server.started:  # the listening socket, not a fixed time
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return Instance(f"127.0.0.1:{port}")

    yield start
    for server, _task in servers:
        server.should_exit = True
    for _server, task in servers:
        await task


__all__ = [
    "ALLOWED_ORIGIN",
    "PASSWORD",
    "REDIS_URL",
    "Account",
    "Instance",
    "ProcessServer",
    "StartInstance",
    "StartProcess",
    "make_admin",
    "require_redis",
    "sign_up",
]
