"""Real processes for the scale-out and fault tests: a private PostgreSQL and Redis that a
test may stop, kill and restart, API servers and workers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
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


PG_BIN = Path(os.environ.get("TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(*args: str) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


class PostgresServer:
    """A PostgreSQL instance of our own (own data directory and port, trust auth, fsync off),
    so a test may stop, kill and restart it without touching the machine's server."""

    def __init__(self) -> None:
        initdb = PG_BIN / "initdb"
        if not initdb.exists():
            unavailable("PostgreSQL server binaries", f"{initdb} not found")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="coderoom-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                str(initdb), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            ),
            check=True,
            capture_output=True,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                "full_page_writes = off\nmax_connections = 100\n"
            )
        self.start()
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "coderoom",
            ),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/coderoom"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self._ctl("-l", str(self.dir / "server.log"), "-w", "-t", "60", "start")
        wait_until(lambda: tcp_reachable("127.0.0.1", self.port))

    def stop(self) -> None:
        """A clean, fast shutdown: connections are closed, new ones refused."""
        self._ctl("-m", "fast", "-w", "-t", "60", "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash): the next start recovers from the WAL."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not tcp_reachable("127.0.0.1", self.port))
        # Orphaned backends notice the postmaster is gone and exit; wait for the port lock.
        wait_until(lambda: not (self.data / "postmaster.pid").exists() or self._stale_pid())

    def _stale_pid(self) -> bool:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return True
        return False

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return tcp_reachable("127.0.0.1", self.port)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres(
                    str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                ),
                check=False,
                capture_output=True,
            )
        shutil.rmtree(self.dir, ignore_errors=True)


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
