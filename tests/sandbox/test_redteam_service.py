"""Red team through the real HTTP service (as root, started under `exec 7<secret`, JSON
logs as in production): descriptors the service holds, at compile time as well as at run
time, and what a hostile request can make the service write into its own logs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.factories import PASSWORD, unique_email
from tests.support.server import REPO, wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.server
LEAKED_FD = 7
SECRET = "service-held-secret-51e0"


@dataclass
class Service:
    url: str
    log: Path


@pytest.fixture
def service(tmp_path: Path, sqlite_url: str) -> Iterator[Service]:
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
    log_path = tmp_path / "server.log"
    log = log_path.open("wb")
    serve = [sys.executable, "-m", "coderoom", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        ["/bin/sh", "-c", f'exec {LEAKED_FD}<"$0"; exec "$@"', str(secret), *serve],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log_path.read_text()
        try:
            return httpx.get(f"{url}/api/v1/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=60)
        yield Service(url, log_path)
    finally:
        process.kill()
        process.wait()
        log.close()


def execute(service: Service, body: dict[str, object]) -> dict[str, object]:
    with httpx.Client(base_url=service.url, timeout=120) as http:
        tokens = http.post(
            "/api/v1/auth/register", json={"email": unique_email("rt"), "password": PASSWORD}
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        response = http.post("/api/v1/sandbox/executions?wait=true", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_services_descriptors_are_out_of_reach_while_compiling_and_running(
    service: Service,
) -> None:
    compiled = execute(
        service,
        {
            "language": "c",
            "files": [
                {"name": "main.c", "content": '#include "/proc/self/fd/7"\nint main(void){}\n'},
                {"name": "b.c", "content": '#include "/proc/1/fd/7"\n'},
                {"name": "c.c", "content": '#include "/dev/fd/7"\n'},
            ],
        },
    )
    assert compiled["status"] == "compile_error"
    assert SECRET not in str(compiled)
    ran = execute(
        service,
        {
            "language": "python",
            "source": (
                "import os\n"
                "for fd in range(3, 1024):\n"
                "    try: print(fd, os.read(fd, 100))\n"
                "    except OSError: pass\n"
                "for p in os.listdir('/proc'):\n"
                "    if p.isdigit():\n"
                "        for fd in os.listdir(f'/proc/{p}/fd'):\n"
                "            try: print(p, fd, open(f'/proc/{p}/fd/{fd}', 'rb').read(100))\n"
                "            except OSError: pass\n"
            ),
        },
    )
    assert ran["status"] == "succeeded", ran
    assert SECRET not in str(ran)


def test_a_hostile_request_never_puts_its_source_into_the_services_logs(
    service: Service,
) -> None:
    """A C program whose memory limit is below what compiling leaves in the cgroup makes
    the engine raise; the error log then carries a traceback whose frames' local
    variables (structlog's dict_tracebacks shows them by default) hold the program."""
    marker = "SOURCE-MARKER-d41c"
    body = execute(
        service,
        {
            "language": "c",
            "source": f'#include <stdio.h>\n/* {marker} */ int main(void){{puts("x");}}\n',
            "stdin": f"stdin {marker}",
            "limits": {"memory_mb": 1},
        },
    )
    assert body["status"] in ("memory_exceeded", "succeeded", "internal_error")
    assert marker not in service.log.read_text()
