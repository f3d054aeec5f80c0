"""A database outage answers 503 (problem+json, Retry-After), never 500, and the API
recovers by itself when the database is back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coderoom import migrations
from tests.conftest import make_settings
from tests.support.cluster import Api, PostgresServer
from tests.support.server import wait_until

pytestmark = pytest.mark.faults

ENV = {
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
    "RATE_LIMIT_API": "10000/minute",
    "RATE_LIMIT_AUTH": "10000/minute",
    "RATE_LIMIT_EXECUTION": "10000/minute",
    "DATABASE_POOL_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        migrations.upgrade(make_settings(database_url=server.url))
        yield server
    finally:
        server.destroy()


@pytest.fixture
def api(tmp_path: Path, postgres: PostgresServer) -> Iterator[Api]:
    server = Api("api", tmp_path, {**ENV, "DATABASE_URL": postgres.url})
    try:
        yield server
    finally:
        server.stop()


def _token(api: Api) -> dict[str, str]:
    body = httpx.post(
        f"{api.url}/auth/register",
        json={"email": "outage@example.com", "password": "outage-test-password"},
        timeout=10,
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def _calls(api: Api, headers: dict[str, str]) -> list[httpx.Response]:
    with httpx.Client(timeout=30) as client:
        return [
            client.get(f"{api.url}/sandbox/executions", headers=headers),
            client.post(
                f"{api.url}/sandbox/executions",
                json={"language": "python", "source": "print(1)"},
                headers=headers,
            ),
            client.get(f"{api.url}/auth/me", headers=headers),
            client.post(
                f"{api.url}/auth/login",
                json={"email": "outage@example.com", "password": "outage-test-password"},
            ),
        ]


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["code"] == "database_unavailable"


def test_requests_get_503_while_the_database_is_down(api: Api, postgres: PostgresServer) -> None:
    headers = _token(api)
    postgres.stop()
    for response in _calls(api, headers):
        _assert_unavailable(response)
    health = httpx.get(f"{api.url}/health", timeout=10)
    assert health.status_code == 503
    assert health.json()["services"]["database"]["status"] == "down"
    assert "retry-after" in health.headers
    postgres.start()
    wait_until(lambda: httpx.get(f"{api.url}/health", timeout=10).status_code == 200)
    assert [r.status_code for r in _calls(api, headers)] == [200, 202, 200, 200]
    assert "Traceback" not in api.text()


def test_a_fast_restart_gives_no_500(api: Api, postgres: PostgresServer) -> None:
    """Pooled connections die with the restart; the next request must not trip over one."""
    headers = _token(api)
    assert {r.status_code for r in _calls(api, headers)} <= {200, 202}
    postgres.restart()
    statuses = [r.status_code for _ in range(3) for r in _calls(api, headers)]
    assert set(statuses) <= {200, 202, 503}, statuses
    assert statuses[-4:] == [200, 202, 200, 200]


def test_a_killed_database_gives_503_then_recovers(api: Api, postgres: PostgresServer) -> None:
    headers = _token(api)
    postgres.kill()
    for response in _calls(api, headers):
        _assert_unavailable(response)
    postgres.start()
    wait_until(lambda: httpx.get(f"{api.url}/health", timeout=10).status_code == 200)
    assert [r.status_code for r in _calls(api, headers)] == [200, 202, 200, 200]
