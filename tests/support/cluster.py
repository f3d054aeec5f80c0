"""Real processes for the scale-out tests: a private Redis, API servers and workers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from tests.support.server import REPO, wait_until
from tests.support.services import REDIS_PREFIX, free_port, tcp_reachable, unavailable


class RedisServer:
    """A redis-server of our own (no persistence), so a test may restart it."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server", "not installed")
        self.binary = binary or "redis-server"
        self.port = free_port()
        self.dir = tmp
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: tcp_reachable("127.0.0.1", self.port))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        wait_until(lambda: not tcp_reachable("127.0.0.1", self.port))

    def restart(self) -> None:
        self.stop()
        self.start()


class Proc:
    """`python -m coderoom <args>` with its own environment and log file."""

    def __init__(self, name: str, tmp: Path, args: list[str], env: dict[str, str]) -> None:
        self.log = tmp / f"{name}.log"
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))
        }
        environment.update(
            {
                "ENVIRONMENT": "test",
                "LOG_FORMAT": "json",
                "REDIS_PREFIX": REDIS_PREFIX,
                "WORKER_METRICS_PORT": "0",
                "PYTHONPATH": str(REPO),
                **env,
            }
        )
        self._out: IO[bytes] = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coderoom", *args],
            cwd=tmp,
            env=environment,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._out.close()


class Api(Proc):
    def __init__(self, name: str, tmp: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        super().__init__(name, tmp, ["serve"], {**env, "PORT": str(self.port), "HOST": "127.0.0.1"})
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"API exited:\n{self.text()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("API did not come up")


class Worker(Proc):
    def __init__(self, name: str, tmp: Path, env: dict[str, str]) -> None:
        super().__init__(name, tmp, ["worker"], env)
        wait_until(lambda: "worker.started" in self.text() or not self.alive(), timeout=60)
        assert self.alive(), self.text()
