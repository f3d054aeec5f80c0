"""Running the real server in a child process, for tests of signals, logs and processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support.services import REDIS_PREFIX, free_port

REPO = Path(__file__).resolve().parents[2]
SERVE = (
    "from coderoom.cli.serve import run_server; from coderoom.config import Settings; "
    "run_server(Settings(), factory='tests.support.slowapp:create')"
)


def wait_until(predicate: object, timeout: float = 30.0) -> None:
    """Poll a condition with a deadline (the condition, not the clock, is what we wait for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met before the deadline")


#: `coderoom serve` itself, as an operator starts it (no test routes).
CODEROOM_SERVE = (sys.executable, "-m", "coderoom", "serve")


class Server:
    def __init__(
        self,
        tmp_path: Path,
        database_url: str,
        *,
        argv: Sequence[str] = (sys.executable, "-c", SERVE),
        **env: str,
    ) -> None:
        self.port = free_port()
        self.control = tmp_path / "control"
        self.control.mkdir()
        self.log = tmp_path / "server.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
        environment.update(
            {
                "ENVIRONMENT": "test",
                "PORT": str(self.port),
                "HOST": "127.0.0.1",
                "DATABASE_URL": database_url,
                "SHUTDOWN_GRACE_SECONDS": "20",
                "LOG_FORMAT": "json",
                "REDIS_PREFIX": REDIS_PREFIX,
                "CODEROOM_TEST_CONTROL_DIR": str(self.control),
                "PYTHONPATH": str(REPO),
                **env,
            }
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                list(argv),
                cwd=tmp_path,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stop() can take uvicorn's worker processes too
            )
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/api/v1/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        """Kill the server and every process it started (uvicorn's workers with
        WORKERS>1), leaving nothing running after the test."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
