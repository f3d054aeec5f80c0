"""The real server process: graceful shutdown, start-up failure, what goes on the wire."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import Server, wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.server


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[Server]:
    running = Server(tmp_path, sqlite_url)
    try:
        wait_until(running.ready)
        yield running
    finally:
        running.stop()


def test_sigterm_lets_an_in_flight_request_finish(server: Server) -> None:
    result: dict[str, httpx.Response] = {}

    def call() -> None:
        result["response"] = httpx.get(f"{server.url}/api/v1/_test/slow", timeout=60)

    caller = threading.Thread(target=call)
    caller.start()
    wait_until((server.control / "entered").exists)
    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: "Shutting down" in server.log.read_text())
    (server.control / "release").touch()
    caller.join(timeout=60)
    assert result["response"].status_code == 200
    assert result["response"].json() == {"status": "finished"}
    assert server.process.wait(timeout=60) == 0
    log = server.log.read_text()
    assert '"event": "app.stopped"' in log  # the lifespan closed the pool and Redis


def test_a_zero_grace_period_stops_at_once_instead_of_waiting_forever(
    tmp_path: Path, sqlite_url: str
) -> None:
    server = Server(tmp_path, sqlite_url, SHUTDOWN_GRACE_SECONDS="0")
    try:
        wait_until(server.ready)
        caller = threading.Thread(
            target=lambda: httpx.get(f"{server.url}/api/v1/_test/slow", timeout=60)
        )
        caller.daemon = True
        caller.start()
        wait_until((server.control / "entered").exists)
        server.process.send_signal(signal.SIGTERM)
        # Never released: with "wait forever" the process would still be running.
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()


def test_real_responses_leak_no_server_version(server: Server) -> None:
    response = httpx.get(f"{server.url}/api/v1/health")
    assert response.status_code == 200
    assert "server" not in response.headers
    assert response.headers["x-correlation-id"]


def test_access_log_line_is_structured(server: Server) -> None:
    httpx.get(f"{server.url}/api/v1/health", headers={"X-Correlation-ID": "trace-me-42"})
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=60)
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line]
    access = [line for line in lines if line.get("correlation_id") == "trace-me-42"]
    assert len(access) == 1
    entry = access[0]
    assert entry["event"] == "request"
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/v1/health"
    assert entry["status"] == 200
    assert entry["client_ip"] == "127.0.0.1"
    assert entry["duration_ms"] >= 0
    assert "user_id" in entry


def test_start_up_fails_cleanly_when_the_database_never_answers(tmp_path: Path) -> None:
    server = Server(
        tmp_path,
        f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        DATABASE_CONNECT_ATTEMPTS="2",
        DATABASE_CONNECT_INTERVAL_SECONDS="0",
    )
    try:
        code = server.process.wait(timeout=60)
    finally:
        server.stop()
    assert code != 0
    log = server.log.read_text()
    assert log.count("database.connect_failed") == 2
    assert "database unreachable after 2 attempts" in log
