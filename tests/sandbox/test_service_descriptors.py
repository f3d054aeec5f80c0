"""A real `coderoom serve` that inherited a descriptor it should not have (started under
`exec 7</secret`): no program it runs can read through it, whatever event loop spawns them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.factories import PASSWORD, unique_email
from tests.support.server import REPO, wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.server
LEAKED_FD = 7
SECRET = "host-secret-4f9d2c"


@pytest.fixture
def service(tmp_path: Path, sqlite_url: str) -> Iterator[str]:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))},
        "DATABASE_URL": sqlite_url,
        "ENVIRONMENT": "development",
        "RATE_LIMIT_ENABLED": "false",
        "LOG_FORMAT": "json",
        "PYTHONPATH": str(REPO),
    }
    log = (tmp_path / "server.log").open("wb")
    serve = [sys.executable, "-m", "coderoom", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(  # exactly as an operator's careless wrapper script would
        ["/bin/sh", "-c", f'exec {LEAKED_FD}<"$0"; exec "$@"', str(secret), *serve],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        try:
            return httpx.get(f"{url}/api/v1/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=60)
        yield url
    finally:
        process.kill()
        process.wait()
        log.close()


def test_no_program_can_read_a_descriptor_the_service_inherited(service: str) -> None:
    with httpx.Client(base_url=service, timeout=60) as http:
        tokens = http.post(
            "/api/v1/auth/register", json={"email": unique_email("fd"), "password": PASSWORD}
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        response = http.post(
            "/api/v1/sandbox/executions?wait=true",
            headers=headers,
            json={
                "language": "bash",
                "source": f"cat <&{LEAKED_FD} 2>&1; ls /proc/self/fd; for f in /proc/self/fd/*; "
                "do readlink $f; done",
            },
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert SECRET not in body["stdout"] + body["stderr"]
    assert "Bad file descriptor" in body["stderr"]
    # 0-2 and the directory `ls` opened; nothing numbered 7, nothing of the service's.
    assert body["stdout"].split("\n")[:4] == ["0", "1", "2", "3"]
    assert "socket:" not in body["stdout"]
